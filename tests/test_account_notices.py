"""`account lock` and `account revoke` tell the owner, the owner's unit mailbox and the unit's head,
in Vietnamese then English (R-ACC-2 "tells the owner", R-LIFE-3), as a notice in each INBOX."""

from __future__ import annotations

import email
import email.policy

PW = "Mk!12345678x"


def _inbox_subjects(store, address: str) -> list[str]:
    account = store.accounts.get_account(address)
    folder = store.folders.get_folder(account.id, "INBOX")
    view = store.messages.open_view(folder.id, claim_recent=False)
    out = []
    for info in store.messages.fetch(folder.id, view.uids):
        msg = email.message_from_bytes(store.messages.read_blob(info.blob), policy=email.policy.default)
        out.append(str(msg["Subject"]))
        body = msg.get_content()
        assert body.index("Tài khoản thư điện tử") < body.index("The mail account")  # Vietnamese first
    return out


def test_lock_and_revoke_notify_owner_unit_and_head(make_server):
    srv = make_server(start=False)
    d = srv.domain
    srv.add_account(f"head@{d}", PW, name="Trần Thị Bình")
    srv.cli("unit", "add", "Phòng Tổ chức", "--code", "tc", "--address", f"tochuc@{d}", "--head", f"head@{d}")
    srv.cli("account", "add", "Nguyễn Văn An", "--unit", "tc", "--password", PW, "--active")
    out = srv.cli("account", "lock", f"annv@{d}", "--reason", "Nghi lộ mật khẩu").stdout
    assert f"annv@{d}: locked" in out and "notified:" in out
    for who in (f"annv@{d}", f"tochuc@{d}", f"head@{d}"):
        assert who in out
    srv.cli("account", "unlock", f"annv@{d}", "--active")
    srv.cli("account", "revoke", f"annv@{d}", "--reason", "Nghỉ hưu")
    store = srv.open_store()
    try:
        for who in (f"annv@{d}", f"tochuc@{d}", f"head@{d}"):
            subjects = _inbox_subjects(store, who)
            assert subjects == [f"Tài khoản annv@{d} đã bị tạm khóa / Account annv@{d} locked",
                                f"Tài khoản annv@{d} đã bị thu hồi / Account annv@{d} revoked"], who
    finally:
        store.close()


def test_no_notify_and_an_account_without_a_unit(make_server):
    srv = make_server(start=False)
    d = srv.domain
    srv.add_account(f"solo@{d}", PW)
    assert srv.cli("account", "lock", f"solo@{d}", "--no-notify").stdout == f"solo@{d}: locked\n"
    srv.cli("account", "unlock", f"solo@{d}", "--active")
    assert f"notified: solo@{d}\n" in srv.cli("account", "lock", f"solo@{d}").stdout  # the owner alone
