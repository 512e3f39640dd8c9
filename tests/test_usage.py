"""The usage role (store.usage) on SQLite and PostgreSQL: recalc finds and fixes drift, racing deliveries never
pass the limit, quota classes by unit, retention expiry (R-QUOTA-1/2)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import update

from quota.retention import RetentionRule
from storage import api, models as m
from storage.sql import SqlStore

DOMAIN = "example.gov.vn"
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(store_url, tmp_path):
    s = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    s.accounts.add_domain(DOMAIN)
    yield s
    s.close()


def message(n: int, size: int = 0) -> bytes:
    head = f"From: a@{DOMAIN}\r\nTo: b@{DOMAIN}\r\nSubject: m{n}\r\nMessage-ID: <{n}@x>\r\n\r\n".encode()
    return head + b"x" * max(0, size - len(head) - 2) + b"\r\n"


def deliver(store, account, n: int, *, size: int = 0, folder: str = "INBOX", when=None, limit=None):
    blob = store.messages.put_blob(message(n, size))
    return store.messages.deliver(blob, [api.DeliveryTarget(account.id, folder, quota_limit=limit)], internaldate=when)[0]


def test_recalc_reports_and_fixes_injected_drift(store):
    a = store.accounts.create_account(f"a@{DOMAIN}", "A", None)
    b = store.accounts.create_account(f"b@{DOMAIN}", "B", None)
    for i in range(3):
        deliver(store, a, i)
    deliver(store, b, 9)
    usage = store.usage
    assert usage.recalc() == []
    true_a = store.accounts.get_account_by_id(a.id)

    def inject(conn, _changes):
        conn.execute(update(m.Account).where(m.Account.id == a.id).values(used_bytes=12345, used_messages=7))

    store.core.run_write(inject)
    drift = usage.recalc()
    assert [(d.address, d.stored_bytes, d.stored_messages) for d in drift] == [(a.address, 12345, 7)]
    assert (drift[0].actual_bytes, drift[0].actual_messages) == (true_a.used_bytes, 3)
    fixed = store.accounts.get_account_by_id(a.id)
    assert (fixed.used_bytes, fixed.used_messages) == (true_a.used_bytes, 3)
    assert usage.recalc() == []


def test_recalc_of_one_account_leaves_the_others(store):
    a = store.accounts.create_account(f"a@{DOMAIN}", "A", None)
    b = store.accounts.create_account(f"b@{DOMAIN}", "B", None)

    def inject(conn, _changes):
        conn.execute(update(m.Account).values(used_bytes=99, used_messages=1))

    store.core.run_write(inject)
    assert [d.account_id for d in store.usage.recalc(a.id)] == [a.id]
    assert store.accounts.get_account_by_id(a.id).used_bytes == 0
    assert store.accounts.get_account_by_id(b.id).used_bytes == 99


def test_twenty_concurrent_deliveries_never_pass_the_last_megabyte(store):
    a = store.accounts.create_account(f"a@{DOMAIN}", "A", None)
    size = 200 * 1024
    filler = deliver(store, a, 0, size=4 * 1024 * 1024)
    assert filler.ok
    limit = store.accounts.get_account_by_id(a.id).used_bytes + 1024 * 1024  # room for 5 of the 20
    blobs = [store.messages.put_blob(message(i, size)) for i in range(1, 21)]
    outcomes: list = []
    start = threading.Barrier(20)

    def send(blob):
        start.wait()
        outcomes.extend(store.messages.deliver(blob, [api.DeliveryTarget(a.id, quota_limit=limit)]))

    threads = [threading.Thread(target=send, args=(b,)) for b in blobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = store.accounts.get_account_by_id(a.id)
    accepted = [o for o in outcomes if o.ok]
    assert after.used_bytes <= limit
    assert len(accepted) == (1024 * 1024) // blobs[0].size == 5
    assert {o.error for o in outcomes if not o.ok} == {"NOQUOTA"}
    assert store.usage.recalc() == []


def test_set_quota_overrides_and_resets(store):
    a = store.accounts.create_account(f"a@{DOMAIN}", "A", None)
    usage = store.usage
    usage.set_quota(a.id, 5 * 1024**3)
    assert store.accounts.get_account_by_id(a.id).quota_bytes == 5 * 1024**3
    usage.set_quota(a.id, None)
    assert store.accounts.get_account_by_id(a.id).quota_bytes is None


def test_class_comes_from_the_account_then_its_unit_then_the_parent_unit(store):
    org = store.org
    parent = org.add_unit("Bộ", "bo", f"bo@{DOMAIN}", None)
    child = org.add_unit("Văn phòng", "vp", f"vp@{DOMAIN}", None, parent="bo")
    person = store.accounts.create_account(f"an@{DOMAIN}", "An", None)
    org.set_profile(person.id, unit_id=child.id)
    usage = store.usage
    assert usage.class_for(person.id) is None
    usage.set_class(parent.account.id, "bo-class")
    assert usage.class_for(person.id) == "bo-class"
    usage.set_class(child.account.id, "vp-class")
    assert usage.class_for(person.id) == "vp-class"
    assert usage.class_for(child.account.id) == "vp-class"
    usage.set_class(person.id, "own")
    assert usage.class_for(person.id) == "own"


def test_notified_threshold_is_claimed_once(store):
    a = store.accounts.create_account(f"a@{DOMAIN}", "A", None)
    usage = store.usage
    assert usage.notified(a.id) == 0
    assert usage.claim_notified(a.id, 0, 80)
    assert not usage.claim_notified(a.id, 0, 80)
    assert usage.notified(a.id) == 80
    assert usage.claim_notified(a.id, 80, 0)


RULES = (RetentionRule("\\Junk", older_than_days=30), RetentionRule("Archive", older_than_days=10))


def test_retention_dry_run_lists_and_real_run_expunges_and_releases_quota(store):
    a = store.accounts.create_account(f"a@{DOMAIN}", "A", None)
    store.folders.create_folder(a.id, "Archive")
    store.folders.rename_folder(a.id, "Junk", "Thư rác")  # the rule follows the role, not the name
    old, recent = NOW - dt.timedelta(days=31), NOW - dt.timedelta(days=29)
    deliver(store, a, 1, folder="Thư rác", when=old)
    deliver(store, a, 2, folder="Thư rác", when=recent)
    deliver(store, a, 3, folder="Archive", when=NOW - dt.timedelta(days=11))
    deliver(store, a, 4, folder="INBOX", when=NOW - dt.timedelta(days=400))  # no rule: kept
    junk = store.folders.get_folder(a.id, "Thư rác")
    before = store.accounts.get_account_by_id(a.id)
    usage = store.usage

    listed = usage.expire(RULES, NOW, dry_run=True)
    assert sorted((e.folder, e.uid) for e in listed) == [("Archive", 1), ("Thư rác", 1)]
    assert store.accounts.get_account_by_id(a.id) == before

    removed = usage.expire(RULES, NOW, dry_run=False)
    assert sorted((e.folder, e.uid) for e in removed) == sorted((e.folder, e.uid) for e in listed)
    after = store.accounts.get_account_by_id(a.id)
    assert after.used_messages == 2
    assert after.used_bytes == before.used_bytes - sum(e.size for e in removed)
    changes = store.messages.changes(junk.id, junk.highestmodseq, junk.uidnext)
    assert changes.expunged == [1] and changes.highestmodseq > junk.highestmodseq
    assert list(store.messages.open_view(junk.id, claim_recent=False).uids) == [2]
    assert usage.expire(RULES, NOW, dry_run=False) == []
    assert usage.recalc() == []


def test_retention_removes_a_large_backlog_in_batches(store, monkeypatch):
    import storage.sql.usage as usage_module

    monkeypatch.setattr(usage_module, "EXPIRE_BATCH", 3)
    a = store.accounts.create_account(f"a@{DOMAIN}", "A", None)
    for i in range(7):
        deliver(store, a, i, folder="Junk", when=NOW - dt.timedelta(days=40))
    seen: list = []
    unsubscribe = store.subscribe(seen.extend)
    removed = store.usage.expire(RULES, NOW, dry_run=False)
    unsubscribe()
    assert sorted(e.uid for e in removed) == list(range(1, 8))
    assert len(seen) == 3  # 3 + 3 + 1: one commit (and one change) per batch
    assert store.accounts.get_account_by_id(a.id).used_messages == 0


def test_notified_many_returns_each_accounts_level_and_zero_for_the_rest(store):
    """notified_many agrees with notified for each account, zero where nothing was sent."""
    a = store.accounts.create_account(f"a@{DOMAIN}", "A", None)
    b = store.accounts.create_account(f"b@{DOMAIN}", "B", None)
    c = store.accounts.create_account(f"c@{DOMAIN}", "C", None)
    usage = store.usage
    assert usage.claim_notified(a.id, 0, 80) and usage.claim_notified(c.id, 0, 100)
    assert usage.notified_many([a.id, b.id, c.id]) == {a.id: 80, b.id: 0, c.id: 100}
