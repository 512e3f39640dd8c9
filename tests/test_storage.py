"""Storage conformance suite: the storage API's contract, run on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading
import time

import pytest

from storage import search as q
from storage.api import AccountState, DeliveryTarget
from storage.errors import Exists, Invalid, NoPerm, NoQuota, NotFound
from storage.sql import SqlStore
from tests.conftest import wait_until

MSG = (
    "From: =?utf-8?b?Tmd1eeG7hW4gVsSDbiBBbg==?= <annv@example.gov.vn>\r\n"
    "To: binhtt@example.gov.vn\r\n"
    "Subject: =?utf-8?q?C=C3=B4ng_v=C4=83n_s=E1=BB=91_12?=\r\n"
    "Date: Mon, 23 Nov 2026 08:00:00 +0700\r\n"
    "Message-ID: <m1@example.gov.vn>\r\n"
    "\r\n"
    "Kính gửi anh Bình,\r\nĐề nghị xem xét.\r\n"
).encode()


@pytest.fixture
def store(store_url, tmp_path):
    s = SqlStore(store_url, blob_dir=tmp_path / "blobs", inline_blob_limit=4096)
    s.accounts.add_domain("example.gov.vn")
    yield s
    s.close()


def _account(store, local="annv"):
    return store.accounts.create_account(f"{local}@example.gov.vn", "Nguyễn Văn An", "x", state=AccountState.ACTIVE)


def _deliver(store, account, raw=MSG, **target):
    blob = store.messages.put_blob(raw)
    (outcome,) = store.messages.deliver(blob, [DeliveryTarget(account.id, **target)])
    return outcome


def test_new_account_has_default_folders_with_special_use(store):
    acc = _account(store)
    folders = {f.name: f.special_use for f in store.folders.list_folders(acc.id)}
    assert folders == {"INBOX": None, "Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash", "Junk": "\\Junk"}


def test_duplicate_address_is_refused_case_insensitively(store):
    _account(store)
    with pytest.raises(Exists):
        store.accounts.create_account("AnNV@Example.gov.vn", "x", None)


def test_delivered_message_is_stored_byte_for_byte_with_metadata(store):
    acc = _account(store)
    outcome = _deliver(store, acc)
    assert outcome.ok and outcome.uid == 1
    inbox = store.folders.get_folder(acc.id, "inbox")
    (info,) = store.messages.fetch(inbox.id, [1], fields=frozenset({"envelope", "structure"}))
    assert store.messages.read_blob(info.blob) == MSG
    assert info.size == len(MSG)
    assert info.envelope["message_id"] == "<m1@example.gov.vn>"
    assert info.structure["type"] == "text"
    assert store.accounts.get_account_by_id(acc.id).used_bytes == len(MSG)


def test_large_body_is_a_file_and_reads_back_with_ranges(store):
    acc = _account(store)
    raw = MSG + b"x" * 100_000 + b"\r\n"
    outcome = _deliver(store, acc, raw)
    (info,) = store.messages.fetch(outcome.folder_id, [outcome.uid])
    assert store.messages.read_blob(info.blob) == raw
    assert store.messages.read_blob(info.blob, 10, 5) == raw[10:15]


def test_fan_out_shares_one_body_and_charges_each_member(store):
    members = [_account(store, f"u{i}") for i in range(5)]
    blob = store.messages.put_blob(MSG)
    outcomes = store.messages.deliver(blob, [DeliveryTarget(a.id) for a in members])
    assert all(o.ok for o in outcomes)
    shas = {store.messages.fetch(o.folder_id, [o.uid])[0].blob for o in outcomes}
    assert len(shas) == 1
    assert all(store.accounts.get_account_by_id(a.id).used_bytes == len(MSG) for a in members)


def test_quota_is_checked_inside_the_commit_per_target(store):
    full, empty = _account(store, "full"), _account(store, "empty")
    _deliver(store, full)
    blob = store.messages.put_blob(MSG + b"again")
    limit = len(MSG) + len(MSG) // 2
    outcomes = store.messages.deliver(blob, [DeliveryTarget(full.id, quota_limit=limit), DeliveryTarget(empty.id, quota_limit=limit)])
    assert [o.ok for o in outcomes] == [False, True]
    assert outcomes[0].error == "NOQUOTA"
    with pytest.raises(NoQuota):
        store.messages.append(store.folders.get_folder(full.id, "INBOX").id, blob, quota_limit=limit)


def test_one_target_refused_at_the_commit_writes_nothing(store):
    """The single-target path (storage/sql/place.py: the charge carries the state and quota checks)
    refuses a revoked account and a full mailbox with the right reason and leaves no trace."""
    revoked, full = _account(store, "revoked"), _account(store, "full")
    store.accounts.set_state(revoked.id, AccountState.REVOKED)
    _deliver(store, full)
    blob = store.messages.put_blob(MSG + b"one")
    assert [(o.ok, o.error) for o in store.messages.deliver(blob, [DeliveryTarget(revoked.id)])] == [(False, "NOTFOUND")]
    limit = len(MSG) + 10
    assert [(o.ok, o.error) for o in store.messages.deliver(blob, [DeliveryTarget(full.id, quota_limit=limit)])] == [(False, "NOQUOTA")]
    assert (store.accounts.get_account_by_id(revoked.id).used_bytes, store.accounts.get_account_by_id(revoked.id).used_messages) == (0, 0)
    assert (store.accounts.get_account_by_id(full.id).used_bytes, store.accounts.get_account_by_id(full.id).used_messages) == (len(MSG), 1)
    assert store.folders.get_folder(full.id, "INBOX").uidnext == 2
    (ok,) = store.messages.deliver(blob, [DeliveryTarget(full.id, quota_limit=limit + len(blob.inline or b""))])
    assert ok.ok and ok.uid == 2


def test_concurrent_deliveries_never_exceed_the_quota(store):
    acc = _account(store)
    blob = store.messages.put_blob(MSG)
    limit = len(MSG) * 5
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: store.messages.deliver(blob, [DeliveryTarget(acc.id, quota_limit=limit)])[0].ok, range(20)))
    assert results.count(True) == 5
    assert store.accounts.get_account_by_id(acc.id).used_bytes == limit


def test_concurrent_deliveries_get_distinct_uids(store):
    acc = _account(store)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        uids = list(pool.map(lambda i: _deliver(store, acc, MSG + str(i).encode()).uid, range(64)))
    assert sorted(uids) == list(range(1, 65))


def test_flags_store_bumps_modseq_and_shows_in_changes(store):
    acc = _account(store)
    o = _deliver(store, acc)
    inbox = store.folders.get_folder(acc.id, "INBOX")
    result = store.messages.store_flags(inbox.id, [o.uid], "add", frozenset({"\\Seen", "$Forwarded"}))
    assert result.updated[0].flags == {"\\Seen", "$Forwarded"}
    changes = store.messages.changes(inbox.id, inbox.highestmodseq, inbox.uidnext)
    assert [m.uid for m in changes.updated] == [o.uid]
    assert changes.highestmodseq == result.updated[0].modseq
    unchanged = store.messages.store_flags(inbox.id, [o.uid], "add", frozenset({"\\Seen"}))
    assert unchanged.updated == []
    cond = store.messages.store_flags(inbox.id, [o.uid], "remove", frozenset({"\\Seen"}), unchanged_since=1)
    assert cond.failed_unchanged_since == [o.uid]


def test_unknown_system_flag_is_refused(store):
    acc = _account(store)
    o = _deliver(store, acc)
    with pytest.raises(Invalid):
        store.messages.store_flags(o.folder_id, [o.uid], "add", frozenset({"\\Bogus"}))


def test_expunge_logs_uids_and_releases_quota(store):
    acc = _account(store)
    a, b = _deliver(store, acc), _deliver(store, acc, MSG + b"2")
    inbox = store.folders.get_folder(acc.id, "INBOX")
    store.messages.store_flags(inbox.id, [a.uid], "add", frozenset({"\\Deleted"}))
    assert store.messages.expunge(inbox.id) == [a.uid]
    changes = store.messages.changes(inbox.id, inbox.highestmodseq, inbox.uidnext)
    assert changes.expunged == [a.uid]
    assert store.accounts.get_account_by_id(acc.id).used_messages == 1
    assert store.messages.fetch(inbox.id, [a.uid, b.uid])[0].uid == b.uid


def test_copy_and_move_keep_bodies_and_assign_new_uids(store):
    acc = _account(store)
    o = _deliver(store, acc)
    inbox, trash = store.folders.get_folder(acc.id, "INBOX"), store.folders.get_folder(acc.id, "Trash")
    copied = store.messages.copy(inbox.id, [o.uid], trash.id)
    assert copied.mapping == [(1, 1)] and copied.uidvalidity == trash.uidvalidity
    moved = store.messages.copy(inbox.id, [o.uid], trash.id, move=True)
    assert moved.mapping == [(1, 2)]
    assert list(store.messages.open_view(inbox.id, claim_recent=False).uids) == []
    assert store.accounts.get_account_by_id(acc.id).used_messages == 2


def test_append_copy_and_move_decide_quota_like_delivery(store):
    """APPEND, COPY and MOVE add messages through the same primitive as delivery: the limit is
    checked inside the commit, a refusal writes nothing, reaching the limit exactly is accepted,
    and a move within one account needs no room."""
    acc = _account(store)
    size = store.messages.put_blob(MSG).size
    inbox, trash = store.folders.get_folder(acc.id, "INBOX"), store.folders.get_folder(acc.id, "Trash")
    uidvalidity, uid = store.messages.append(inbox.id, store.messages.put_blob(MSG), flags=frozenset({"\\Seen", "$Work"}), quota_limit=size)
    assert (uidvalidity, uid) == (inbox.uidvalidity, 1)
    (info,) = store.messages.fetch(inbox.id, [uid])
    assert info.flags == frozenset({"\\Seen", "$Work"}) and info.size == size
    with pytest.raises(NoQuota):
        store.messages.append(inbox.id, store.messages.put_blob(MSG), quota_limit=2 * size - 1)
    with pytest.raises(NoQuota):
        store.messages.copy(inbox.id, [uid], trash.id, quota_limit=2 * size - 1)
    account = store.accounts.get_account_by_id(acc.id)
    assert (account.used_bytes, account.used_messages) == (size, 1)
    assert list(store.messages.open_view(trash.id, claim_recent=False).uids) == []
    moved = store.messages.copy(inbox.id, [uid], trash.id, move=True, quota_limit=size)
    assert moved.mapping == [(1, 1)]
    (info,) = store.messages.fetch(trash.id, [1])
    assert info.flags == frozenset({"\\Seen", "$Work"})
    account = store.accounts.get_account_by_id(acc.id)
    assert (account.used_bytes, account.used_messages) == (size, 1)
    copied = store.messages.copy(trash.id, [1], inbox.id, quota_limit=2 * size)
    assert copied.mapping == [(1, 2)]
    assert store.accounts.get_account_by_id(acc.id).used_messages == 2
    with pytest.raises(NotFound):
        store.messages.append(10**6, store.messages.put_blob(MSG))


def test_uids_never_repeat_after_expunge(store):
    acc = _account(store)
    o = _deliver(store, acc)
    store.messages.store_flags(o.folder_id, [o.uid], "add", frozenset({"\\Deleted"}))
    store.messages.expunge(o.folder_id)
    assert _deliver(store, acc).uid == o.uid + 1


def test_folders_create_rename_delete(store):
    acc = _account(store)
    store.folders.create_folder(acc.id, "Công văn đến")
    store.folders.create_folder(acc.id, "Công văn đến/2026")
    with pytest.raises(Exists):
        store.folders.create_folder(acc.id, "Công văn đến")
    store.folders.rename_folder(acc.id, "Công văn đến", "Văn bản đến")
    names = {f.name for f in store.folders.list_folders(acc.id)}
    assert {"Văn bản đến", "Văn bản đến/2026"} <= names
    with pytest.raises(NoPerm):
        store.folders.delete_folder(acc.id, "INBOX")
    store.folders.delete_folder(acc.id, "Văn bản đến/2026")
    with pytest.raises(NotFound):
        store.folders.get_folder(acc.id, "Văn bản đến/2026")


def test_recreated_folder_gets_a_new_uidvalidity(store):
    acc = _account(store)
    first = store.folders.create_folder(acc.id, "X")
    store.folders.delete_folder(acc.id, "X")
    assert store.folders.create_folder(acc.id, "X").uidvalidity > first.uidvalidity


def test_rename_inbox_moves_messages(store):
    acc = _account(store)
    _deliver(store, acc)
    store.folders.rename_folder(acc.id, "INBOX", "Cũ")
    assert list(store.messages.open_view(store.folders.get_folder(acc.id, "INBOX").id, claim_recent=False).uids) == []
    assert list(store.messages.open_view(store.folders.get_folder(acc.id, "Cũ").id, claim_recent=False).uids) == [1]


def test_recent_is_claimed_by_one_session(store):
    acc = _account(store)
    o = _deliver(store, acc)
    first = store.messages.open_view(o.folder_id, claim_recent=True)
    second = store.messages.open_view(o.folder_id, claim_recent=True)
    assert first.recent_uids == {o.uid} and second.recent_uids == frozenset()


def test_search_folds_vietnamese_tones_and_case(store):
    acc = _account(store)
    o = _deliver(store, acc)
    fid = o.folder_id
    assert store.search.search(fid, q.HeaderContains("subject", "cong van so 12")) == [o.uid]
    assert store.search.search(fid, q.HeaderContains("subject", "CÔNG VĂN")) == [o.uid]
    assert store.search.search(fid, q.BodyContains("de nghi")) == [o.uid]
    assert store.search.search(fid, q.TextContains("binhtt")) == [o.uid]
    assert store.search.search(fid, q.HeaderContains("subject", "khong co")) == []
    assert store.search.search(fid, q.And((q.HasFlag("\\Seen", False), q.UidSet(((1, None),))))) == [o.uid]
    assert store.search.search(fid, q.Not(q.HasFlag("\\Seen", False))) == []
    assert store.search.search(fid, q.DateCompare("sent", "on", dt.date(2026, 11, 23))) == [o.uid]
    assert store.search.search(fid, q.SizeCompare("larger", 10_000)) == []
    if store.is_sqlite:  # the same answers once the background FTS5 indexer has caught up
        store.search.index_pending()  # the background indexer may have been first
        assert store.search.index_pending() == 0
        assert store.search.search(fid, q.HeaderContains("subject", "cong van so 12")) == [o.uid]
        assert store.search.search(fid, q.TextContains("binhtt")) == [o.uid]
        assert store.search.search(fid, q.HeaderContains("subject", "khong co")) == []


def test_sort_by_subject_and_size(store):
    acc = _account(store)
    for subject in ("Re: b", "a", "c"):
        raw = f"Subject: {subject}\r\nFrom: x@y.vn\r\n\r\n{'x' * len(subject)}\r\n".encode()
        _deliver(store, acc, raw)
    fid = store.folders.get_folder(acc.id, "INBOX").id
    assert store.search.sort(fid, [q.SortKey("subject")], q.All()) == [2, 1, 3]
    assert store.search.sort(fid, [q.SortKey("size", reverse=True)], q.All())[0] == 1


def test_listener_hears_each_commit(store):
    acc = _account(store)
    heard = []
    event = threading.Event()

    def listener(changes):
        heard.extend(changes)
        event.set()

    unsubscribe = store.subscribe(listener)
    o = _deliver(store, acc)
    assert event.wait(5)
    assert heard[0].folder_id == o.folder_id
    unsubscribe()


def test_a_deliverys_change_says_in_full_what_it_added(store):
    """FolderChange.since/new lets IDLE sessions skip the store (imap/notify.py): what it says
    must be exactly what ``changes(folder, since, uidnext before)`` answers after the commit."""
    acc, other = _account(store), _account(store, "binhtt")
    heard = []
    lock = threading.Condition()

    def listener(changes):
        with lock:
            heard.extend(changes)
            lock.notify_all()

    store.subscribe(listener)
    inbox = store.folders.get_folder(acc.id, "INBOX")
    _deliver(store, acc)
    blob = store.messages.put_blob(MSG + b"x")
    store.messages.deliver(blob, [DeliveryTarget(acc.id, flags=frozenset({"\\Flagged", "$Work"})), DeliveryTarget(other.id)])
    with lock:
        assert lock.wait_for(lambda: len(heard) >= 3, 5)
    mine = [c for c in heard if c.folder_id == inbox.id]
    assert [c.since for c in mine] == [inbox.highestmodseq, inbox.highestmodseq + 1]
    uidnext = inbox.uidnext
    for change in mine:
        assert change.highestmodseq == change.since + 1 and len(change.new) == 1
        full = store.messages.changes(inbox.id, change.since, uidnext)
        assert full.updated == [] and full.expunged == []
        assert full.new[0] == change.new[0]
        uidnext = change.new[0].uid + 1
    assert mine[1].new[0].flags == frozenset({"\\Flagged", "$Work"})


def test_delete_account_removes_everything(store):
    acc = _account(store)
    _deliver(store, acc)
    store.accounts.delete_account(acc.id)
    assert store.accounts.get_account("annv@example.gov.vn") is None
    with pytest.raises(NotFound):
        store.accounts.delete_account(acc.id)


def test_other_processes_commits_reach_listeners_on_postgresql(store_url, tmp_path):
    """Two stores on one PostgreSQL database stand for two server processes (LISTEN/NOTIFY)."""
    if store_url.startswith("sqlite"):
        pytest.skip("SQLite serves one process; cross-process notification is PostgreSQL's")
    first = SqlStore(store_url, blob_dir=tmp_path / "a")
    second = SqlStore(store_url, blob_dir=tmp_path / "b")
    try:
        first.accounts.add_domain("example.gov.vn")
        acc = _account(first)
        heard = threading.Event()
        folders = []

        def listener(changes):
            folders.extend(c.folder_id for c in changes)
            heard.set()

        first.subscribe(listener)
        outcome = _deliver(second, acc)
        assert heard.wait(5), "the first store never heard of the second store's delivery"
        assert outcome.folder_id in folders
    finally:
        first.close()
        second.close()


def test_search_by_message_id_and_special_characters(store):
    acc = _account(store)
    o = _deliver(store, acc)
    fid = o.folder_id
    assert store.search.search(fid, q.HeaderContains("message-id", "m1@example")) == [o.uid]
    assert store.search.search(fid, q.And((q.HeaderContains("subject", "so 12"), q.BodyContains("de nghi")))) == [o.uid]
    assert store.search.search(fid, q.TextContains("100%")) == []
    assert store.search.search(fid, q.Or(q.BodyContains("khong"), q.HeaderContains("x-unknown", ""))) == []


def test_read_blobs_returns_every_body_in_one_call(store):
    acc = _account(store)
    small = _deliver(store, acc)
    large = _deliver(store, acc, MSG + b"y" * 50_000 + b"\r\n")
    infos = store.messages.fetch(small.folder_id, [small.uid, large.uid])
    bodies = store.messages.read_blobs([i.blob for i in infos])
    assert [bodies[i.blob] for i in infos] == [store.messages.read_blob(i.blob) for i in infos]
    with pytest.raises(NotFound):
        store.messages.read_blobs(["0" * 64])


def test_read_heads_returns_the_first_bytes_of_each_body_inline_or_on_disk(store):
    acc = _account(store)
    small = _deliver(store, acc)
    large = _deliver(store, acc, MSG + b"y" * 50_000 + b"\r\n")  # over inline_blob_limit: a file
    infos = store.messages.fetch(small.folder_id, [small.uid, large.uid])
    lengths = {infos[0].blob: 40, infos[1].blob: 300}
    heads = store.messages.read_heads(lengths)
    assert heads == {sha: store.messages.read_blob(sha)[:n] for sha, n in lengths.items()}
    assert store.messages.read_heads({infos[0].blob: 10**9})[infos[0].blob] == store.messages.read_blob(infos[0].blob)
    with pytest.raises(NotFound):
        store.messages.read_heads({"0" * 64: 10})


def test_fetch_rows_are_plain_tuples_in_uid_order_and_skip_missing_uids(store):
    from storage.api import ROW_BLOB, ROW_DATE, ROW_ENVELOPE, ROW_FLAGS, ROW_MODSEQ, ROW_SIZE, ROW_UID

    acc = _account(store)
    outs = [_deliver(store, acc) for _ in range(5)]
    fid = outs[0].folder_id
    store.messages.store_flags(fid, [2], "add", frozenset({"\\Seen", "$Work"}))
    infos = {i.uid: i for i in store.messages.fetch(fid, range(1, 6), fields=frozenset({"envelope"}))}
    for uids, batch in (([5, 1, 2, 3, 4, 99], 2), ([1, 5], 1000), ([4, 2], 1)):  # dense, sparse, one per batch
        rows = [r for part in store.messages.fetch_rows(fid, uids, date=True, batch=batch) for r in part]
        assert [r[ROW_UID] for r in rows] == sorted(u for u in set(uids) if u in infos)
        for r in rows:
            info = infos[r[ROW_UID]]
            assert (r[ROW_MODSEQ], r[ROW_FLAGS], r[ROW_DATE], r[ROW_SIZE], r[ROW_BLOB]) == (
                info.modseq, info.flags, info.internaldate, info.size, info.blob)
            assert r[ROW_ENVELOPE:] == (None, None, None)
    (row,) = next(store.messages.fetch_rows(fid, [2]))
    assert row[ROW_DATE] is None and row[ROW_FLAGS] == {"\\Seen", "$Work"}
    assert store.messages.body_meta([row[ROW_BLOB]], frozenset({"envelope"})) == {row[ROW_BLOB]: (infos[2].envelope, None)}


def test_renderings_are_kept_per_message_version_and_body_and_go_with_the_message(store):
    from storage.api import ROW_BLOB, ROW_REF

    acc = _account(store)
    first, second = _deliver(store, acc), _deliver(store, acc, MSG + b"other\r\n")
    fid = first.folder_id

    def kept(version):
        return {r[0]: r[7:] for part in store.messages.fetch_rows(fid, [1, 2], rendered=version) for r in part}

    rows = {r[0]: r for part in store.messages.fetch_rows(fid, [1, 2], rendered=1) for r in part}
    assert kept(1) == {1: (None, None, None), 2: (None, None, None)}
    store.messages.put_rendered(1, [(rows[1][ROW_REF], rows[1][ROW_BLOB], b"(env)", None, None)], wait=True)
    store.messages.put_rendered(1, [(rows[1][ROW_REF], rows[1][ROW_BLOB], None, b"(body)", b"(bs)")], wait=True)  # completes, keeps env
    assert kept(1) == {1: (b"(env)", b"(body)", b"(bs)"), 2: (None, None, None)}
    assert kept(2) == {1: (None, None, None), 2: (None, None, None)}  # another renderer version: not used
    # A rendering claimed for another body is never stored against this message.
    store.messages.put_rendered(1, [(rows[2][ROW_REF], rows[1][ROW_BLOB], b"(wrong)", None, None)], wait=True)
    assert kept(1)[2] == (None, None, None)
    store.messages.put_rendered(2, [(rows[1][ROW_REF], rows[1][ROW_BLOB], b"(env2)", None, None)], wait=True)  # a new version replaces all
    assert kept(2)[1] == (b"(env2)", None, None) and kept(1)[1] == (None, None, None)
    store.messages.store_flags(fid, [1], "add", frozenset({"\\Deleted"}))
    assert store.messages.expunge(fid) == [1]
    store.messages.put_rendered(2, [(rows[1][ROW_REF], rows[1][ROW_BLOB], b"(late)", None, None)], wait=True)  # message gone: skipped
    copied = store.messages.copy(fid, [2], store.folders.get_folder(acc.id, "Trash").id)
    assert copied.mapping and kept(2) == {2: (None, None, None)}
    with store.core.reading() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM fetch_cache").scalar() == 0
    store.messages.put_rendered(2, [(rows[2][ROW_REF], rows[2][ROW_BLOB], b"(queued)", None, None)])  # in the background
    deadline = time.monotonic() + 10
    while kept(2)[2] != (b"(queued)", None, None) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kept(2)[2] == (b"(queued)", None, None)


def test_fetch_rows_without_blob_name_the_body_only_where_a_rendering_is_missing(store):
    from storage.api import ROW_BLOB, ROW_REF

    acc = _account(store)
    first, second = _deliver(store, acc), _deliver(store, acc, MSG + b"other\r\n")
    fid = first.folder_id
    full = {r[0]: r for part in store.messages.fetch_rows(fid, [1, 2], rendered=1) for r in part}
    store.messages.put_rendered(1, [(full[1][ROW_REF], full[1][ROW_BLOB], b"(env)", None, b"(bs)")], wait=True)

    def idents(**kw):
        return {r[0]: (r[ROW_BLOB], r[ROW_REF], r[7:]) for part in store.messages.fetch_rows(fid, [1, 2], blob=False, **kw) for r in part}

    assert idents(rendered=1, kinds=("envelope",)) == {
        1: (None, None, (b"(env)", None, None)), 2: (full[2][ROW_BLOB], full[2][ROW_REF], (None, None, None))}
    assert idents(rendered=1, kinds=("envelope", "body")) == {  # body missing: named for rendering and keeping
        1: (full[1][ROW_BLOB], full[1][ROW_REF], (b"(env)", None, None)),
        2: (full[2][ROW_BLOB], full[2][ROW_REF], (None, None, None))}
    assert idents() == {1: (None, None, (None, None, None)), 2: (None, None, (None, None, None))}
    for kind, slot in (("envelope", 0), ("body", 1), ("bodystructure", 2)):  # one kind: its column alone
        got = idents(rendered=1, kinds=(kind,))
        assert got[2] == (full[2][ROW_BLOB], full[2][ROW_REF], (None, None, None))
        assert got[1][2] == tuple((b"(env)", None, b"(bs)")[i] if i == slot else None for i in range(3))
    # The narrow reads (flags only, one rendering) give the rows the general one gives.
    for kw in ({}, {"rendered": 1, "kinds": ("bodystructure",)}):
        narrow = [r for part in store.messages.fetch_rows(fid, [1, 2], blob=False, **kw) for r in part]
        wide = [r for part in store.messages.fetch_rows(fid, [1, 2], blob=False, date=True, **kw) for r in part]
        assert [r[:3] + r[4:5] + r[7:] for r in narrow] == [r[:3] + r[4:5] + r[7:] for r in wide]


def test_unrendered_lists_messages_lacking_renderings_in_key_order_and_resumes(store):
    from storage.api import ROW_BLOB, ROW_REF

    acc = _account(store)
    outs = [_deliver(store, acc, MSG + b"%d\r\n" % i) for i in range(5)]
    fid = outs[0].folder_id
    rows = [r for part in store.messages.fetch_rows(fid, range(1, 6)) for r in part]
    refs = [r[ROW_REF] for r in rows]
    store.messages.put_rendered(1, [(rows[1][ROW_REF], rows[1][ROW_BLOB], b"(e)", b"(b)", b"(bs)")], wait=True)  # complete
    store.messages.put_rendered(1, [(rows[2][ROW_REF], rows[2][ROW_BLOB], b"(e)", None, None)], wait=True)  # partial: listed
    found, after = store.messages.unrendered(1, 0, limit=2)
    assert [f[0] for f in found] == [refs[0], refs[2]] and after == refs[2]
    assert found[0][1] == rows[0][ROW_BLOB] and found[0][2]["subject"] is not None and found[0][3]["type"]
    found, after = store.messages.unrendered(1, after, limit=2)
    assert [f[0] for f in found] == [refs[3], refs[4]]
    found, after = store.messages.unrendered(1, after, limit=2)
    assert found == [] and after == refs[4]
    assert [f[0] for f in store.messages.unrendered(2, 0)[0]] == refs  # another version: all of them
    assert store.messages.unrendered(1, refs[4]) == ([], refs[4])


def test_fetch_returns_timezone_aware_dates_and_flags(store):
    acc = _account(store)
    o = _deliver(store, acc)
    store.messages.store_flags(o.folder_id, [o.uid], "add", frozenset({"\\Flagged", "$Label1"}))
    (info,) = store.messages.fetch(o.folder_id, [o.uid], fields=frozenset({"envelope"}))
    assert info.internaldate.tzinfo is not None
    assert info.flags == {"\\Flagged", "$Label1"}
    assert info.structure is None and info.envelope["subject"]


def test_fan_out_to_many_accounts_gives_each_its_uid_usage_and_refusal(store):
    """A delivery to several accounts takes the batched path (storage/sql/place.py, Placer.place):
    each copy gets the next UID of its own folder and its own quota charge; a revoked account
    and a full mailbox are refused alone, exactly as one by one."""
    ok = [_account(store, f"member{i}") for i in range(5)]
    revoked, full = _account(store, "revoked"), _account(store, "full")
    store.accounts.set_state(revoked.id, AccountState.REVOKED)
    _deliver(store, ok[0])  # member0 already has UID 1
    store.folders.create_folder(ok[1].id, "Công văn đến")
    blob = store.messages.put_blob(MSG + b"fan-out")
    targets = [DeliveryTarget(a.id) for a in ok] + [DeliveryTarget(revoked.id), DeliveryTarget(full.id, quota_limit=10)]
    targets[1] = DeliveryTarget(ok[1].id, "Công văn đến")
    outcomes = store.messages.deliver(blob, targets)
    assert [o.ok for o in outcomes] == [True] * 5 + [False, False]
    assert [o.error for o in outcomes[5:]] == ["NOTFOUND", "NOQUOTA"]
    assert [o.uid for o in outcomes[:5]] == [2, 1, 1, 1, 1]
    assert outcomes[1].folder_id == store.folders.get_folder(ok[1].id, "Công văn đến").id
    for account in ok:
        assert store.accounts.get_account_by_id(account.id).used_messages == (2 if account is ok[0] else 1)
    assert store.accounts.get_account_by_id(full.id).used_bytes == 0
    assert store.folders.get_folder(ok[0].id, "INBOX").uidnext == 3


def test_many_accounts_read_at_once_equal_one_by_one(store):
    """``get_accounts_by_ids`` (the quota watcher after a group delivery) reads in chunks and
    gives the same accounts as ``get_account_by_id``; unknown ids are left out."""
    accounts = [_account(store, f"batch{i}") for i in range(3)]
    _deliver(store, accounts[1])
    ids = [a.id for a in accounts]
    found = store.accounts.get_accounts_by_ids([*ids, ids[0], 987654])
    assert sorted(found) == sorted(ids)
    for account_id in ids:
        assert found[account_id] == store.accounts.get_account_by_id(account_id)
    assert found[ids[1]].used_messages == 1
    assert store.accounts.get_accounts_by_ids([]) == {}


def test_a_write_racing_the_close_fails_or_commits_and_never_hangs(tmp_path):
    """Writer.submit and Writer.close share a lock: a job queued behind the stop marker would
    leave its caller (a worker thread of the event loop's executor) blocked for ever."""
    from sqlalchemy import create_engine, text

    from storage.errors import Temp
    from storage.writer import Writer

    for attempt in range(20):
        engine = create_engine(f"sqlite:///{tmp_path / f'w{attempt}.db'}")
        writer = Writer(engine, max_batch=8, on_commit=lambda changes: None)
        futures, refused = [], []
        stop = threading.Event()

        def submit_until_refused() -> None:
            while not stop.is_set():
                try:
                    futures.append(writer.submit(lambda conn, changes: conn.execute(text("SELECT 1")).scalar()))
                except Temp:
                    refused.append(1)
                    return

        threads = [threading.Thread(target=submit_until_refused) for _ in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: futures, timeout=10, what="a job submitted")  # the close lands among submissions
        writer.close()
        stop.set()
        for t in threads:
            t.join()
        for future in futures:  # each was committed, or failed as closed: none is left waiting
            try:
                assert future.result(timeout=5) == 1
            except Temp:
                pass
        assert refused
        engine.dispose()


def test_the_writer_replaces_a_connection_the_database_dropped(store, store_url):
    """The writer keeps one connection from batch to batch; when it breaks (PostgreSQL: a restart,
    an operator's pg_terminate_backend; SQLite: the DB-API connection closed under it) at most
    the batch in flight fails as Temp, the sender retries, and the next batch connects anew."""
    from storage.errors import Temp

    account = _account(store)
    _deliver(store, account)
    if store.is_sqlite:
        store.core._writer._conn.connection.dbapi_connection.close()
    else:
        import psycopg

        name = store_url.rsplit("/", 1)[1]
        with psycopg.connect(store_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(_deliver(store, account, MSG + str(len(outcomes)).encode()).ok)
        except Temp:
            outcomes.append("temp")
    assert outcomes[-1] is True and set(outcomes) <= {True, "temp"}
    assert store.accounts.get_account_by_id(account.id).used_messages == 1 + outcomes.count(True)


def test_a_compressed_body_reads_back_exactly_by_every_route(store):
    """A text body is kept zstd-compressed (blobs.codec) and every read returns the bytes as
    delivered: whole, by range, several at once, and the header prefix."""
    acc = _account(store)
    raw = MSG + ("Đề nghị các đơn vị báo cáo trước ngày 30.\r\n" * 60).encode()
    assert len(raw) < 4096  # kept in the database, not as a file
    blob = store.messages.put_blob(raw)
    (outcome,) = store.messages.deliver(blob, [DeliveryTarget(acc.id)])
    assert outcome.ok
    with store.messages._raw_read() as cur:  # the row as kept, to show it is compressed
        cur.execute(f"SELECT codec, length(data) FROM blobs WHERE sha256 = {'?' if store.is_sqlite else '%s'}", (blob.sha256,))
        how, kept = cur.fetchone()
    body_start = raw.index(b"\r\n\r\n") + 4
    assert how == f"zstd:{body_start}" and kept < len(raw) // 3  # the header section stays as it is
    assert store.messages.read_blob(blob.sha256) == raw
    assert store.messages.read_blob(blob.sha256, 10, 50) == raw[10:60]
    assert store.messages.read_blobs([blob.sha256]) == {blob.sha256: raw}
    assert store.messages.read_heads({blob.sha256: 120}) == {blob.sha256: raw[:120]}
    assert store.messages.read_heads({blob.sha256: body_start + 40}) == {blob.sha256: raw[: body_start + 40]}


def test_a_long_header_section_is_kept_with_its_compressed_body(store):
    """The codec names the header's length (``zstd:N``): a header section of several KB fits."""
    acc = _account(store)
    refs = " ".join(f"<ref{i}@example.gov.vn>" for i in range(150))
    raw = f"References: {refs}\r\n".encode() + MSG + ("Đề nghị báo cáo.\r\n" * 200).encode()
    outcome = _deliver(store, acc, raw)
    assert outcome.ok
    (info,) = store.messages.fetch(store.folders.get_folder(acc.id, "INBOX").id, [outcome.uid])
    assert store.messages.read_blob(info.blob) == raw
