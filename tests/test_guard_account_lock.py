"""The optional account lock of the login guard (R-SEC-1, ``guard.lock_after``): after N failed
logins to one account, from any addresses, the account is locked (its owner too, which is why it
is off by default); ``account show`` and ``account unlock`` say why, and the unlock starts the
count again. Real IMAP and POP3 logins against a real server."""

from __future__ import annotations

import imaplib
import re
import poplib

import pytest

PASSWORD = "Bench-pass-2026!"


@pytest.fixture
def srv(make_server):
    from tests.conftest import free_port

    server = make_server({"guard": {"trusted": [], "lock_after": 3, "delay_first": 0, "block_after": 100},
                          "listeners": {"web": {"address": "127.0.0.1", "port": free_port()}}})
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


def portal_change(srv, current: str) -> tuple[int, str]:
    """POST /password (the portal); its status and page."""
    import ssl
    import urllib.error
    import urllib.parse
    import urllib.request

    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    data = urllib.parse.urlencode({"address": srv.user, "current": current, "new": "Moi-2027-mat-khau!",
                                   "confirm": "Moi-2027-mat-khau!"}).encode()
    url = f"https://127.0.0.1:{srv.settings.listeners.web.port}/password"
    try:
        with urllib.request.urlopen(url, data=data, context=ctx, timeout=60) as r:
            return r.status, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8")


def test_account_is_locked_after_n_failures_and_unlock_says_why(srv):
    assert imap_login(srv, "wrong-1") is False
    assert pop3_login(srv, "wrong-2") is False
    assert re.search(r"^state:\s+active$", srv.cli("account", "show", srv.user).stdout, re.M)
    assert imap_login(srv, "wrong-3") is False
    assert imap_login(srv, PASSWORD) is False  # locked: the owner too
    assert re.search(r"^state:\s+locked \(3 failed logins\)$", srv.cli("account", "show", srv.user).stdout, re.M)
    assert "limit=account-locked account=" + srv.user in srv.log()
    # the portal tells the owner (the right password) why, and nobody else
    code, page = portal_change(srv, PASSWORD)
    assert code == 403 and "Hộp thư đang bị khoá (3 failed logins)" in page and "The mailbox is locked (3 failed logins)" in page
    code, page = portal_change(srv, "wrong-5")
    assert code == 403 and "3 failed logins" not in page
    srv.cli("account", "show", srv.user)
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
