"""Handover of a unit mailbox (R-BOX-3): new head, new password, every message, folder, flag and
UID kept, the old head's access gone, the event in the audit log. On every backend."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from storage import models as m
from storage.api import AccountState, DeliveryTarget
from storage.errors import Invalid, NoPerm, NotFound
from storage.api import ALL_RIGHTS, Organisation, Right
from storage.sql import SqlStore

pytestmark = pytest.mark.requirement("R-BOX-3")

D = "example.gov.vn"
MESSAGES = 2000


@pytest.fixture
def store(store_url, tmp_path):
    store = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    store.accounts.add_domain(D)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def org(store):
    return store.org


def _message(i: int) -> bytes:
    return (f"From: dv{i}@other.gov.vn\r\nTo: vanphong@{D}\r\nSubject: Công văn số {i}\r\n"
            f"Message-ID: <{i}@other.gov.vn>\r\n\r\nNội dung {i}\r\n").encode()


def _load(store, account_id: int) -> None:
    """Thousands of messages in a few transactions: 30 bodies × 100 targets each, over folders."""
    for name in ("Lưu trữ", "Lưu trữ/2025", "Công văn đến"):
        store.folders.create_folder(account_id, name)
    folders = ["INBOX", "Lưu trữ", "Lưu trữ/2025", "Công văn đến"]
    for i in range(MESSAGES // 100):
        blob = store.messages.put_blob(_message(i))
        store.messages.deliver(blob, [DeliveryTarget(account_id, folders[j % 4]) for j in range(100)])
    inbox = store.folders.get_folder(account_id, "INBOX")
    uids = store.messages.open_view(inbox.id, claim_recent=True).uids
    store.messages.store_flags(inbox.id, uids[::3], "add", frozenset({"\\Seen"}))
    store.messages.store_flags(inbox.id, uids[::7], "add", frozenset({"\\Flagged", "$Label1"}))
    store.messages.store_flags(inbox.id, uids[::11], "add", frozenset({"\\Deleted"}))
    archive = store.folders.get_folder(account_id, "Lưu trữ/2025")
    store.messages.store_flags(archive.id, store.messages.open_view(archive.id, claim_recent=False).uids[::2], "add",
                      frozenset({"\\Answered", "$Forwarded"}))


def _snapshot(store, account_id: int) -> dict:
    result = {}
    for folder in store.folders.list_folders(account_id):
        uids = store.messages.open_view(folder.id, claim_recent=False).uids
        messages = [(i.uid, i.flags, i.blob, i.size, i.internaldate, i.modseq) for i in store.messages.fetch(folder.id, uids)]
        result[folder.name] = (folder.uidvalidity, folder.uidnext, folder.highestmodseq, folder.subscribed, messages)
    account = store.accounts.get_account_by_id(account_id)
    result["_account"] = (account.address, account.used_bytes, account.used_messages, account.kind)
    with store.core.reading() as conn:
        result["_addresses"] = sorted(conn.scalars(select(m.Address.address).where(m.Address.account_id == account_id)))
    return result


def test_handover_keeps_every_message_folder_and_flag(org, store):
    old = org.accounts.create_account(f"old@{D}", "Lê Văn Cũ", "h", state=AccountState.ACTIVE)
    new = org.accounts.create_account(f"new@{D}", "Phạm Thị Mới", "h", state=AccountState.ACTIVE)
    clerk = org.accounts.create_account(f"clerk@{D}", "Văn Thư", "h", state=AccountState.ACTIVE)
    unit = org.add_unit("Văn phòng", "vp", f"vanphong@{D}", "old-hash", head_account_id=old.id)
    org.add_address(unit.account.id, f"vp@{D}")
    org.delegate(unit.account.id, clerk.id, {Right.READ}, granted_by=old.id)
    org.accounts.set_state(unit.account.id, AccountState.ACTIVE)
    _load(store, unit.account.id)
    before = _snapshot(store, unit.account.id)
    assert sum(len(v[4]) for k, v in before.items() if not k.startswith("_")) == MESSAGES

    after_unit = org.handover("vp", new.id, "new-hash")

    assert _snapshot(store, unit.account.id) == before
    mailbox = org.accounts.get_account_by_id(unit.account.id)
    assert mailbox.password_hash == "new-hash"
    assert mailbox.state is AccountState.MUST_CHANGE_PASSWORD  # R-PASS-1 for the new holder
    assert after_unit.head.id == new.id
    assert org.rights_for(new.id, unit.account.id) == ALL_RIGHTS
    assert org.rights_for(old.id, unit.account.id) == frozenset()
    with pytest.raises(NoPerm):
        org.resolve_login(old, f"vanphong@{D}")
    assert org.rights_for(clerk.id, unit.account.id) == {Right.READ}  # delegations are the unit's
    entry = org.audit_log(unit.account.id)[0]
    assert (entry.action, entry.detail) == ("handover", f"from old@{D} to new@{D}")
    with store.core.reading() as conn:
        assert conn.scalar(select(func.count()).select_from(m.Blob)) == MESSAGES // 100


def test_handover_can_revoke_delegations_and_ends_the_new_heads_own(org):
    old = org.accounts.create_account(f"old@{D}", "Cũ", "h", state=AccountState.ACTIVE)
    new = org.accounts.create_account(f"new@{D}", "Mới", "h", state=AccountState.ACTIVE)
    clerk = org.accounts.create_account(f"clerk@{D}", "Thư", "h", state=AccountState.ACTIVE)
    unit = org.add_unit("Văn phòng", "vp", f"vanphong@{D}", "h", head_account_id=old.id)
    org.delegate(unit.account.id, new.id, {Right.READ})
    org.delegate(unit.account.id, clerk.id, {Right.READ})
    org.handover("vp", new.id, "h2")
    assert [d.delegate.id for d in org.delegations(unit.account.id)] == [clerk.id]
    org.handover("vp", clerk.id, "h3", revoke_delegations=True)
    assert org.delegations(unit.account.id) == []
    assert "delegations revoked" in org.audit_log(unit.account.id)[0].detail


def test_handover_refusals_change_nothing(org):
    head = org.accounts.create_account(f"head@{D}", "Trưởng", "h", state=AccountState.ACTIVE)
    revoked = org.accounts.create_account(f"gone@{D}", "Đã nghỉ", "h", state=AccountState.REVOKED)
    group = org.add_group(f"g@{D}", "Nhóm")
    org.add_unit("Văn phòng", "vp", f"vanphong@{D}", "h", head_account_id=head.id)
    for target, error in ((head.id, Invalid), (revoked.id, Invalid), (group.account.id, Invalid), (99999, NotFound)):
        with pytest.raises(error):
            org.handover("vp", target, "new")
    with pytest.raises(NotFound):
        org.handover("nope", head.id, "new")
    unit = org.get_unit("vp")
    assert unit.head.id == head.id and unit.account.password_hash == "h"
