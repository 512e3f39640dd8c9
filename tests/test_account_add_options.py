"""`account add --unit CODE` and `--password-stdin` (scripts give the password without it showing
in the process list), in a subprocess on both backends; refusals are one line."""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher

PW = "Mk!12345678x"


def test_add_into_a_unit_with_the_password_on_stdin(make_server):
    srv = make_server(start=False)
    srv.cli("unit", "add", "Văn phòng", "--code", "vp")
    out = srv.cli("account", "add", "Nguyễn Thị Hoa", "--unit", "VP", "--password-stdin", input=PW + "\n").stdout
    assert "address: hoant@example.gov.vn" in out and "unit: vp" in out and "password:" not in out
    store = srv.open_store()
    try:
        account = store.accounts.get_account("hoant@example.gov.vn")
        assert PasswordHasher().verify(account.password_hash, unicodedata.normalize("NFC", PW))
        assert store.org.get_profile(account.id).unit_id == store.org.get_unit("vp").id
        assert account.state.value == "must_change_password"  # R-PASS-1
    finally:
        store.close()


def test_refusals(make_server):
    srv = make_server(start=False)
    result = srv.cli("account", "add", "Lê Văn Nam", "--unit", "khong-co", "--password", PW, check=False)
    assert result.returncode == 1 and "no unit 'khong-co'" in result.stderr and "Traceback" not in result.stderr
    result = srv.cli("account", "add", "Lê Văn Nam", "--password", PW, "--password-stdin", input=PW, check=False)
    assert result.returncode == 2 and "not both" in result.stderr
    result = srv.cli("account", "add", "Lê Văn Nam", "--password-stdin", input="", check=False)
    assert result.returncode == 1 and "no password on standard input" in result.stderr
    result = srv.cli("account", "add", "Lê Văn Nam", "--password-stdin", input="short\n", check=False)
    assert result.returncode == 1 and "password refused" in result.stderr


def test_move_to_another_unit_keeps_the_profile_and_is_audited(make_server):
    srv = make_server(start=False)
    srv.cli("unit", "add", "Văn phòng", "--code", "vp")
    srv.cli("unit", "add", "Phòng Tổ chức", "--code", "tc", "--address", "tochuc@example.gov.vn")
    srv.cli("account", "add", "Nguyễn Thị Hoa", "--unit", "vp", "--password", PW)
    out = srv.cli("account", "move", "hoant@example.gov.vn", "--unit", "tc").stdout
    assert out == "hoant@example.gov.vn: unit vp -> tc\n"
    again = srv.cli("account", "move", "hoant@example.gov.vn", "--unit", "tc", check=False)
    assert again.returncode == 1 and "already in unit tc" in again.stderr
    unit_mailbox = srv.cli("account", "move", "tochuc@example.gov.vn", "--unit", "vp", check=False)
    assert unit_mailbox.returncode == 1 and "only a person" in unit_mailbox.stderr
    store = srv.open_store()
    try:
        account = store.accounts.get_account("hoant@example.gov.vn")
        assert store.org.get_profile(account.id).unit_id == store.org.get_unit("tc").id
        [entry] = [e for e in store.org.audit_log(account.id) if e.action == "move"]
        assert entry.detail == "unit vp -> tc" and entry.actor_account_id is None
    finally:
        store.close()
