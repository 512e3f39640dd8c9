"""SELECT's folder snapshot (storage/sql/snapshots.py) is reused only while the folder is
unchanged: every change that moves EXISTS, UNSEEN or FLAGS is seen by the next SELECT, from this
process's store and from another store object on the same database (another server process)."""

from __future__ import annotations

import pytest

from storage.api import AccountState, DeliveryTarget
from storage.sql import SqlStore
from storage.sql.snapshots import MIN_UIDS, FolderSnapshots, Snapshot
from array import array

N = MIN_UIDS + 4


def _msg(i: int) -> bytes:
    return f"From: a@example.gov.vn\r\nSubject: {i}\r\nMessage-ID: <{i}@x>\r\n\r\nbody {i}\r\n".encode()


@pytest.fixture
def stores(store_url, tmp_path):
    a = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    b = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    yield a, b
    a.close()
    b.close()


def test_every_change_shows_in_the_next_view(stores):
    a, b = stores
    a.accounts.add_domain("example.gov.vn")
    acc = a.accounts.create_account("annv@example.gov.vn", "An", "x", state=AccountState.ACTIVE)
    inbox = next(f for f in a.folders.list_folders(acc.id) if f.name == "INBOX")
    for i in range(N):
        a.messages.deliver(a.messages.put_blob(_msg(i)), [DeliveryTarget(acc.id)])
    first = a.messages.open_view(inbox.id, claim_recent=False)
    assert len(first.uids) == N and first.unseen == N
    assert a.messages.open_view(inbox.id, claim_recent=False).uids == first.uids  # from the snapshot

    b.messages.store_flags(inbox.id, [first.uids[0]], "add", frozenset({"\\Seen", "$Label1"}))  # another process
    view = a.messages.open_view(inbox.id, claim_recent=False)
    assert view.unseen == N - 1 and view.first_unseen_uid == first.uids[1]
    assert "$Label1" in view.keywords

    b.messages.deliver(b.messages.put_blob(_msg(N)), [DeliveryTarget(acc.id)])
    view = a.messages.open_view(inbox.id, claim_recent=False)
    assert len(view.uids) == N + 1 and view.unseen == N

    b.messages.store_flags(inbox.id, [first.uids[2]], "add", frozenset({"\\Deleted"}))
    b.messages.expunge(inbox.id)
    view = a.messages.open_view(inbox.id, claim_recent=False)
    assert len(view.uids) == N and first.uids[2] not in view.uids


def test_the_cache_is_bounded_and_never_goes_back_in_time():
    snaps = FolderSnapshots(max_uids=3 * MIN_UIDS)
    uids = array("q", range(1, MIN_UIDS + 1))
    for folder in range(5):
        snaps.put(folder, Snapshot((1, 5, MIN_UIDS + 1), uids, 0, None, ()))
    assert snaps.get(0, (1, 5, MIN_UIDS + 1)) is None  # dropped: oldest first
    assert snaps.get(4, (1, 5, MIN_UIDS + 1)) is not None
    snaps.put(4, Snapshot((1, 4, MIN_UIDS + 1), uids, 0, None, ()))  # a slower, older reader
    assert snaps.get(4, (1, 5, MIN_UIDS + 1)) is not None
    assert snaps.get(4, (1, 6, MIN_UIDS + 1)) is None  # the folder moved on
