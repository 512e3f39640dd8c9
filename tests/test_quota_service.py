"""mailserver.mailboxes.quota on SQLite and PostgreSQL: limits in layers (profile → unit class →
account), figures for SMTP and IMAP, and threshold warnings once per crossing."""

from __future__ import annotations

import datetime as dt
import email
import email.header
import email.policy

import pytest

from config.settings import Settings
from mailserver.mailboxes.quota import QuotaService, ThresholdWatcher, level
from quota import QuotaLimits, smtp_size_limit
from storage import api
from storage.api import Right
from storage.sql import SqlStore

DOMAIN = "example.gov.vn"
KiB, MiB, GiB = 1024, 1024**2, 1024**3
LIMIT = 100 * KiB


def settings(**quota) -> Settings:
    return Settings.model_validate({"domains": [DOMAIN], "hostname": "mail.example.gov.vn", "quota": quota})


@pytest.fixture
def store(store_url, tmp_path):
    s = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    s.accounts.add_domain(DOMAIN)
    yield s
    s.close()


def test_limits_come_from_profile_then_unit_class_then_account(store):
    service = QuotaService(settings(mailbox="2GB", attachment="20MB",
                                    classes={"lanh-dao": {"mailbox": "10GB"}, "kho": {"attachment": None}}), store)
    org = store.org
    unit = org.add_unit("Văn phòng", "vp", f"vp@{DOMAIN}", None)
    person = store.accounts.create_account(f"an@{DOMAIN}", "An", None)
    org.set_profile(person.id, unit_id=unit.id)
    assert service.limits_for(person) == QuotaLimits(2 * GiB, 20 * MiB)
    service.usage.set_class(unit.account.id, "lanh-dao")
    assert service.limits_for(person) == QuotaLimits(10 * GiB, 20 * MiB)
    service.usage.set_quota(person.id, 5 * GiB)
    person = store.accounts.get_account_by_id(person.id)
    assert service.limits_for(person) == QuotaLimits(5 * GiB, 20 * MiB)
    assert service.delivery_limit(person) == 5 * GiB
    service.usage.set_class(person.id, "kho")
    assert service.limits_for(person) == QuotaLimits(5 * GiB, None)


def test_a_class_missing_from_the_config_falls_back_to_the_profile(store):
    service = QuotaService(settings(mailbox="1GB"), store)
    a = store.accounts.create_account(f"a@{DOMAIN}", "A", None)
    service.usage.set_class(a.id, "removed-from-yaml")
    assert service.limits_for(a).mailbox_bytes == GiB


def test_smtp_size_follows_the_largest_attachment_limit_capped_by_max_message_size(store):
    assert QuotaService(settings(attachment="20MB"), store).smtp_size() == smtp_size_limit(20 * MiB)
    assert QuotaService(settings(attachment="15MB"), store).smtp_size() == smtp_size_limit(15 * MiB)
    bigger = QuotaService(settings(attachment="15MB", classes={"x": {"attachment": "25MB"}}), store)
    assert bigger.smtp_size() == smtp_size_limit(25 * MiB)
    unlimited = QuotaService(settings(attachment=None), store)
    assert unlimited.smtp_size() == unlimited.settings.limits.max_message_size


def test_check_delivery_and_imap_resources(store):
    service = QuotaService(settings(mailbox=LIMIT), store)
    a = store.accounts.create_account(f"a@{DOMAIN}", "A", None)
    store.messages.deliver(store.messages.put_blob(b"Subject: x\r\n\r\n" + b"y" * 1000), [api.DeliveryTarget(a.id)])
    a = store.accounts.get_account_by_id(a.id)
    assert service.check_delivery(a, LIMIT - a.used_bytes).ok
    refused = service.check_delivery(a, LIMIT - a.used_bytes + 1)
    assert not refused.ok and refused.resource == "storage" and not refused.permanent
    assert service.imap_quota(a) == [("STORAGE", -(-a.used_bytes // 1024), LIMIT // 1024)]
    assert QuotaService(settings(mailbox=None), store).imap_quota(a) == []


@pytest.mark.parametrize(
    ("used", "expected"), [(0, 0), (79, 0), (80, 80), (89, 80), (90, 90), (99, 90), (100, 100), (150, 100)]
)
def test_level_is_the_highest_threshold_reached(used, expected):
    assert level(used, 100, (80, 90, 100)) == expected


def fill(store, account, to_bytes: int, n: int) -> None:
    """Deliver one message that brings the account's usage to exactly ``to_bytes``."""
    current = store.accounts.get_account_by_id(account.id).used_bytes
    head = f"From: x@{DOMAIN}\r\nSubject: fill {n}\r\n\r\n".encode()
    blob = store.messages.put_blob(head + b"z" * (to_bytes - current - len(head)))
    assert blob.size == to_bytes - current
    assert store.messages.deliver(blob, [api.DeliveryTarget(account.id)])[0].ok


def notices(store, account) -> list[email.message.EmailMessage]:
    inbox = store.folders.get_folder(account.id, "INBOX")
    result = []
    for info in store.messages.fetch(inbox.id, store.messages.open_view(inbox.id, claim_recent=False).uids):
        msg = email.message_from_bytes(store.messages.read_blob(info.blob), policy=email.policy.default)
        if msg["Auto-Submitted"] == "auto-generated":
            result.append(msg)
    return result


def test_warnings_arrive_once_per_threshold_and_again_only_after_dropping_below(store):
    service = QuotaService(settings(mailbox=LIMIT), store)
    a = store.accounts.create_account(f"a@{DOMAIN}", "Nguyễn Văn An", None)
    watcher = service.start_watcher()
    try:
        fill(store, a, 70 * KiB, 1)
        assert watcher.wait_idle() and notices(store, a) == []
        fill(store, a, 80 * KiB, 2)
        assert watcher.wait_idle()
        got = notices(store, a)
        assert [m["Subject"] for m in got] == ["Hộp thư đã dùng 80% dung lượng / Mailbox 80% full"]
        # The notice itself added bytes; more mail below 90 % sends nothing new.
        fill(store, a, 85 * KiB, 3)
        assert watcher.wait_idle() and len(notices(store, a)) == 1
        fill(store, a, 90 * KiB, 4)
        assert watcher.wait_idle() and len(notices(store, a)) == 2
        # Full: the notice is delivered although the mailbox is over its limit (quota_limit=None).
        fill(store, a, LIMIT, 5)
        assert watcher.wait_idle()
        got = notices(store, a)
        assert [m["Subject"] for m in got][-1] == "Hộp thư đã đầy / Mailbox full"
        assert store.accounts.get_account_by_id(a.id).used_bytes > LIMIT
        # Dropping below 80 % re-arms every threshold; crossing 80 % again warns again.
        inbox = store.folders.get_folder(a.id, "INBOX")
        uids = store.messages.open_view(inbox.id, claim_recent=False).uids
        store.messages.store_flags(inbox.id, uids, "add", frozenset({"\\Deleted"}))
        store.messages.expunge(inbox.id)
        assert watcher.wait_idle() and service.usage.notified(a.id) == 0
        fill(store, a, 81 * KiB, 6)
        assert watcher.wait_idle()
        got = notices(store, a)
        assert [m["Subject"] for m in got] == ["Hộp thư đã dùng 80% dung lượng / Mailbox 80% full"]
    finally:
        service.close()


def test_thresholds_passed_between_two_looks_each_send_their_notice(store):
    """Two deliveries in the same instant (or one large one) pass 80 % and 90 % before the watcher
    looks: the owner is owed both notices, lowest first, each naming its own percentage."""
    service = QuotaService(settings(mailbox=LIMIT), store)
    a = store.accounts.create_account(f"a@{DOMAIN}", "A", None)
    watcher = ThresholdWatcher(service)
    fill(store, a, 95 * KiB, 1)
    assert watcher.check(a.id) == 90
    assert watcher.check(a.id) is None
    assert [m["Subject"] for m in notices(store, a)] == [
        "Hộp thư đã dùng 80% dung lượng / Mailbox 80% full", "Hộp thư đã dùng 90% dung lượng / Mailbox 90% full"]


def test_two_watchers_on_one_database_send_one_notice(store):
    service = QuotaService(settings(mailbox=LIMIT), store)
    a = store.accounts.create_account(f"a@{DOMAIN}", "A", None)
    fill(store, a, 80 * KiB, 1)
    first, second = ThresholdWatcher(service), ThresholdWatcher(QuotaService(service.settings, store))
    assert [first.check(a.id), second.check(a.id)].count(80) == 1
    assert len(notices(store, a)) == 1


def test_unit_mailbox_warning_goes_to_the_unit_its_head_and_delegates(store):
    service = QuotaService(settings(mailbox=LIMIT), store)
    head = store.accounts.create_account(f"truong@{DOMAIN}", "Trưởng phòng", None)
    clerk = store.accounts.create_account(f"vanthu@{DOMAIN}", "Văn thư", None)
    other = store.accounts.create_account(f"khac@{DOMAIN}", "Khác", None)
    org = store.org
    unit = org.add_unit("Văn phòng", "vp", f"vp@{DOMAIN}", None, head_account_id=head.id)
    org.delegate(unit.account.id, clerk.id, [Right.READ])
    fill(store, unit.account, 91 * KiB, 1)
    assert ThresholdWatcher(service).check(unit.account.id) == 90
    for who in (unit.account, head, clerk):
        got = notices(store, who)
        assert len(got) == 2, who.address  # 80 % and 90 %, both passed by the one delivery
        assert all(f"vp@{DOMAIN}" in m.get_content() for m in got)
    assert notices(store, other) == []


def test_the_watcher_hands_commits_to_its_own_thread(store):
    service = QuotaService(settings(mailbox=LIMIT), store)
    a = store.accounts.create_account(f"a@{DOMAIN}", "A", None)
    watcher = service.start_watcher()
    try:
        fill(store, a, 92 * KiB, 1)
        assert watcher.wait_idle()
        assert service.usage.notified(a.id) == 90
    finally:
        service.close()
    assert watcher._thread.is_alive() is False


def test_a_group_delivery_reads_the_notified_levels_in_one_query_without_error(store, caplog):
    """The watcher's pass after a delivery to several accounts reads their warning levels in
    one query (Usage.notified_many), with no ERROR logged and no fallback to one each."""
    import logging

    from sqlalchemy import event

    service = QuotaService(settings(mailbox=LIMIT), store)
    members = [store.accounts.create_account(f"m{i}@{DOMAIN}", f"M{i}", None) for i in range(5)]
    watcher = service.start_watcher()
    statements: list[str] = []

    def count(_conn, _cursor, statement, _params, _context, _many):
        if "quota_state" in statement:
            statements.append(statement)

    engine = store.core._read
    event.listen(engine, "before_cursor_execute", count)
    try:
        with caplog.at_level(logging.ERROR):
            blob = store.messages.put_blob(f"From: a@{DOMAIN}\r\nSubject: group\r\n\r\nhello\r\n".encode())
            outcomes = store.messages.deliver(blob, [api.DeliveryTarget(m.id) for m in members])
            assert all(o.ok for o in outcomes)
            assert watcher.wait_idle()
    finally:
        event.remove(engine, "before_cursor_execute", count)
        service.close()
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert len(statements) == 1, statements
