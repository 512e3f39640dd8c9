"""R-PASS-1 at the protocol level (passwords.enforce_initial_change): an account still on its
initial password is refused by IMAP (NO [EXPIRED]), POP3 (-ERR [AUTH]) and submission
(535 5.7.8), each naming the portal, while the portal accepts its password change; after the
change every protocol lets it in. A grace period lets it in meanwhile."""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import ssl

import pytest

from tests.conftest import free_port

INITIAL, NEW = "Mk!Initial-2026", "Mk!Changed-2026"
S535 = 535


def _client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test server's self-signed certificate
    return ctx


def _imap(srv, address, password):
    c = imaplib.IMAP4(srv.host, srv.port("imap"), timeout=10)
    try:
        return c.login(address, password)
    except imaplib.IMAP4.error as exc:
        return ("NO", [str(exc).encode()])
    finally:
        c.shutdown()


def _pop3(srv, address, password) -> bytes:
    c = poplib.POP3(srv.host, srv.port("pop3"), timeout=10)
    try:
        c.user(address)
        return c.pass_(password)
    except poplib.error_proto as exc:
        return exc.args[0]
    finally:
        c.close()


def _submission(srv, address, password):
    with smtplib.SMTP(srv.host, srv.port("submission"), timeout=10) as s:
        s.starttls(context=_client_tls())
        try:
            return s.login(address, password)
        except smtplib.SMTPAuthenticationError as exc:
            return exc.smtp_code, exc.smtp_error


@pytest.fixture
def gated(make_server):
    web = free_port()
    return make_server({"passwords": {"enforce_initial_change": True},
                        "listeners": {"web": {"address": "127.0.0.1", "port": web}}})


def test_initial_password_opens_the_portal_only(gated):
    srv = gated
    address = f"moi@{srv.domain}"
    srv.cli("account", "add", "Người Mới", "--address", address, "--password", INITIAL)
    status, [text] = _imap(srv, address, INITIAL)
    assert status == "NO" and b"[EXPIRED]" in text and b"/password" in text
    pop = _pop3(srv, address, INITIAL)
    assert pop.startswith(b"-ERR [AUTH]") and b"/password" in pop
    code, message = _submission(srv, address, INITIAL)
    assert code == S535 and message.startswith(b"5.7.8") and b"/password" in message
    assert b"[AUTHENTICATIONFAILED]" in _imap(srv, address, "wrong password")[1][0]  # nothing revealed

    srv.cli("account", "passwd", address, "--password", NEW, "--active")  # as the portal does: active
    assert _imap(srv, address, NEW)[0] == "OK"
    assert _pop3(srv, address, NEW).startswith(b"+OK")
    assert _submission(srv, address, NEW)[0] == 235


def test_grace_period_lets_the_account_in_meanwhile(make_server):
    srv = make_server({"passwords": {"enforce_initial_change": True, "initial_change_grace_hours": 24}})
    address = f"grace@{srv.domain}"
    srv.cli("account", "add", "Người Mới", "--address", address, "--password", INITIAL)
    assert _imap(srv, address, INITIAL)[0] == "OK"
    assert _pop3(srv, address, INITIAL).startswith(b"+OK")


def test_policy_function():
    import datetime as dt

    from mailserver.policy.passwords import initial_change_required

    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    kw = dict(state="must_change_password", since=t, enforce=True)
    assert initial_change_required(**kw, grace_hours=None, now=t)
    assert not initial_change_required(**kw, grace_hours=2, now=t + dt.timedelta(hours=1))
    assert initial_change_required(**kw, grace_hours=2, now=t + dt.timedelta(hours=2))
    assert not initial_change_required(**{**kw, "enforce": False}, grace_hours=None, now=t)
    assert not initial_change_required(**{**kw, "state": "active"}, grace_hours=None, now=t)
