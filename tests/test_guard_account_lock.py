"""The optional account lock of the login guard (R-SEC-1, ``guard.lock_after``): after N failed
logins to one account, from any addresses, the account is locked (its owner too, which is why it
is off by default); ``account show`` and ``account unlock`` say why, and the unlock starts the
count again. Real IMAP and POP3 logins against a real server."""

from __future__ import annotations

import imaplib
import poplib

import pytest

PASSWORD = "Bench-pass-2026!"


@pytest.fixture
def srv(make_server):
    server = make_server({"guard": {"trusted": [], "lock_after": 3, "delay_first": 0, "block_after": 100}})
    server.user = f"annv@{server.domain}"
    server.add_account(server.user, PASSWORD)
    return server


def imap_login(srv, password: str) -> bool:
    with imaplib.IMAP4(srv.host, srv.port("imap"), timeout=30) as c:
        try:
            c.login(srv.user, password)
            return True
        except imaplib.IMAP4.error:
            return False


def pop3_login(srv, password: str) -> bool:
    c = poplib.POP3(srv.host, srv.port("pop3"), timeout=30)
    try:
        c.user(srv.user)
        c.pass_(password)
        return True
    except poplib.error_proto:
        return False
    finally:
        c.close()


def test_account_is_locked_after_n_failures_and_unlock_says_why(srv):
    assert imap_login(srv, "wrong-1") is False
    assert pop3_login(srv, "wrong-2") is False
    assert "state:            active" in srv.cli("account", "show", srv.user).stdout
    assert imap_login(srv, "wrong-3") is False
    assert imap_login(srv, PASSWORD) is False  # locked: the owner too
    assert "state:            locked (3 failed logins)" in srv.cli("account", "show", srv.user).stdout
    assert "limit=account-locked account=" + srv.user in srv.log()
    unlocked = srv.cli("account", "unlock", srv.user, "--active").stdout
    assert unlocked.strip() == f"{srv.user}: active (was locked: 3 failed logins)"
    assert imap_login(srv, "wrong-4") is False  # the count started again: one failure does not lock
    assert imap_login(srv, PASSWORD) is True


def test_without_lock_after_the_owner_is_never_locked_out(make_server):
    srv = make_server({"guard": {"trusted": [], "delay_first": 0, "block_after": 100}})
    srv.user = f"annv@{srv.domain}"
    srv.add_account(srv.user, PASSWORD)
    for i in range(5):
        assert imap_login(srv, f"wrong-{i}") is False
    assert imap_login(srv, PASSWORD) is True
