"""The self-service portal (mailserver/web/portal.py, R-PASS-1..4, R-DIR-1) over real HTTPS: a user
changes the initial password; wrong, weak or mismatched entries are refused with the reason in
Vietnamese and English and change nothing; the new password works over IMAP and SMTP at once; the
health page; the directory page when published; oversized forms refused unread. SQLite and
PostgreSQL."""

from __future__ import annotations

import imaplib
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.requirement("R-PASS-1")

DOMAIN = "example.gov.vn"
ADDRESS = f"annv@{DOMAIN}"
INITIAL = "Ban-dau-2026!"
NEW = "Mat-khau-moi-2027!"


@pytest.fixture
def portal(make_server):
    server = make_server({"listeners": {"web": {"address": "127.0.0.1", "port": free_port()}},
                          "web": {"publish_directory": True},
                          "agency": {"name": "Sở Thông tin và Truyền thông", "helpdesk": {"phone": "0263 3 822 000"}}})
    server.cli("account", "add", "Nguyễn Văn An", "--address", ADDRESS, "--password", INITIAL)  # must change it
    return server


def _ctx() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the server's self-signed certificate
    return ctx


def _url(server, path: str) -> str:
    return f"https://127.0.0.1:{server.settings.listeners.web.port}{path}"


def get(server, path: str) -> tuple[int, dict, str]:
    try:
        with urllib.request.urlopen(_url(server, path), context=_ctx(), timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8")


def change(server, address: str, current: str, new: str, confirm: str | None = None) -> tuple[int, str]:
    data = urllib.parse.urlencode({"address": address, "current": current, "new": new,
                                   "confirm": new if confirm is None else confirm}).encode()
    try:
        with urllib.request.urlopen(_url(server, "/password"), data=data, context=_ctx(), timeout=30) as r:
            return r.status, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8")


def state(server) -> str:
    return next(line for line in server.cli("account", "show", ADDRESS).stdout.splitlines() if "state" in line)


def test_form_in_vietnamese_and_english_with_strict_headers(portal):
    status, headers, body = get(portal, "/password")
    assert status == 200 and "Đổi mật khẩu" in body and "Change password" in body and 'name="confirm"' in body
    assert headers["Cache-Control"] == "no-store" and headers["X-Frame-Options"] == "DENY"
    assert "default-src 'none'" in headers["Content-Security-Policy"] and "Twisted" not in headers.get("Server", "")
    assert get(portal, "/nowhere")[0] == 404 and get(portal, "/password/x")[0] == 404


def test_every_page_in_one_layout_with_one_stylesheet(portal):
    """Jinja2 layout: the agency's name and helpdesk from configuration, /static/site.css the only
    style (the CSP allows no inline style), unknown static files 404."""
    status, headers, body = get(portal, "/password")
    assert "Sở Thông tin và Truyền thông" in body and "0263 3 822 000" in body
    assert '<link rel="stylesheet" href="/static/site.css">' in body and "<style" not in body and "style=" not in body
    assert "style-src 'self'" in headers["Content-Security-Policy"] and "unsafe-inline" not in headers["Content-Security-Policy"]
    status, headers, css = get(portal, "/static/site.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css") and "box-sizing" in css
    assert get(portal, "/static/other.css")[0] == 404 and get(portal, "/static")[0] == 404
    for path in ("/", "/danh-ba", "/nowhere"):
        assert "/static/site.css" in get(portal, path)[2], path


def test_wrong_current_password_or_unknown_address_is_refused_alike_and_slowly(portal):
    started = time.monotonic()
    status, body = change(portal, ADDRESS, "Sai-mat-khau-1", NEW)
    assert status == 403 and "mật khẩu hiện tại không đúng" in body and "Wrong address or current password" in body
    assert time.monotonic() - started >= 0.9
    status2, body2 = change(portal, f"khongco@{DOMAIN}", INITIAL, NEW)
    assert status2 == 403 and body2.replace("khongco", "annv") == body
    assert "must_change_password" in state(portal)


@pytest.mark.parametrize(
    ("new", "confirm", "vi", "en"),
    [
        ("ngan1A!", None, "ít nhất 8 ký tự", "at least 8 characters"),
        ("chuthuongthoi", None, "Mật khẩu phải", "classes"),
        (NEW, "Mat-khau-khac-2027!", "không khớp", "differ"),
        (INITIAL, None, "phải khác mật khẩu hiện tại", "must differ from the current one"),
    ],
)
def test_weak_or_mismatched_new_password_is_refused_with_the_reason(portal, new, confirm, vi, en):
    status, body = change(portal, ADDRESS, INITIAL, new, confirm)
    assert status == 400 and vi in body and en in body, body
    assert f'value="{ADDRESS}"' in body  # the form comes back filled in
    assert "must_change_password" in state(portal)


def test_initial_password_changed_then_used_over_imap_and_smtp(portal):
    url = f"https://127.0.0.1:{portal.settings.listeners.web.port}/password"  # loopback-only portal
    with imaplib.IMAP4(portal.host, portal.port("imap")) as before:
        before.login(ADDRESS, INITIAL)  # R-PASS-1: the client is told where (RFC 3501 ALERT)
        alert = [line for line in before.untagged_responses.get("OK", []) if b"[ALERT]" in line]
        assert alert and url.encode() in alert[0] and b"Mat khau ban dau phai duoc doi" in alert[0]
    status, body = change(portal, ADDRESS, INITIAL, NEW)
    assert status == 200 and "Đã đổi mật khẩu" in body and "Password changed" in body
    assert "active" in state(portal) and "must_change" not in state(portal)
    with imaplib.IMAP4(portal.host, portal.port("imap")) as old, pytest.raises(imaplib.IMAP4.error):
        old.login(ADDRESS, INITIAL)
    c = imaplib.IMAP4(portal.host, portal.port("imap"))
    assert c.login(ADDRESS, NEW)[0] == "OK"
    assert not [line for line in c.untagged_responses.get("OK", []) if b"[ALERT]" in line]
    c.logout()
    with smtplib.SMTP(portal.host, portal.port("submission")) as s:
        s.login(ADDRESS, NEW)
        assert not s.sendmail(ADDRESS, [ADDRESS], b"Subject: sau khi doi\r\n\r\nok\r\n")


def test_health_and_published_directory(portal):
    status, headers, body = get(portal, "/healthz")
    assert (status, body) == (200, "ok\n")
    status, _headers, body = get(portal, "/danh-ba")
    assert status == 200 and "Nguyễn Văn An" in body and ADDRESS in body
    assert "/danh-ba" in get(portal, "/")[2]


def test_directory_is_not_published_unless_configured(make_server):
    server = make_server({"listeners": {"web": {"address": "127.0.0.1", "port": free_port()}}})
    assert get(server, "/danh-ba")[0] == 404
    assert "/danh-ba" not in get(server, "/")[2]


def test_oversized_form_is_refused_before_it_is_read(portal):
    raw = socket.create_connection(("127.0.0.1", portal.settings.listeners.web.port), timeout=30)
    tls = _ctx().wrap_socket(raw)
    tls.sendall(b"POST /password HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: 100000000\r\n\r\n" + b"a" * 1000)
    reply = tls.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")
    tls.close()
    assert get(portal, "/healthz")[0] == 200  # and the portal goes on


def test_plain_http_portal_only_on_loopback(make_server):
    server = make_server(start=False)
    result = server.cli("--set", "listeners.web.address=10.0.0.1", "--set", "listeners.web.port=8080",
                        "--set", "web.tls=false", "config", "check", check=False)
    assert result.returncode != 0 and "web.tls" in (result.stderr + result.stdout)


def test_metrics_for_monitoring_from_allowed_networks_only(portal):
    c = imaplib.IMAP4(portal.host, portal.port("imap"))
    c.login(ADDRESS, INITIAL)
    with smtplib.SMTP(portal.host, portal.port("smtp")) as s:
        s.sendmail("x@other.gov.vn", [ADDRESS], b"Subject: do\r\n\r\nthu\r\n")
    status, headers, text = get(portal, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert lines["mailserver_up"] == "1"
    assert lines['mailserver_accounts{kind="personal",state="must_change_password"}'] == "1"
    assert lines["mailserver_messages"] == "1" and int(lines["mailserver_mailbox_used_bytes"]) > 0
    assert lines['mailserver_sessions{protocol="imap"}'] == "1" and lines['mailserver_sessions{protocol="pop3"}'] == "0"
    assert int(lines["mailserver_resident_memory_bytes"]) > int(lines["mailserver_anonymous_memory_bytes"]) > 10_000_000
    c.logout()


def test_metrics_hidden_from_other_networks(make_server):
    server = make_server({"listeners": {"web": {"address": "127.0.0.1", "port": free_port()}},
                          "web": {"metrics_from": ["10.0.0.0/8"]}})
    assert get(server, "/metrics")[0] == 404
    assert get(server, "/healthz")[0] == 200


def test_a_client_that_keeps_guessing_is_stopped(make_server):
    """The portal shares the login guard of IMAP, POP3 and submission: after ``guard.block_after``
    refused passwords the client's address gets 429, even with the right password, and is
    refused on IMAP too; the account itself is untouched: its owner logs in from elsewhere."""
    from concurrent.futures import ThreadPoolExecutor

    blocks = 6
    portal = make_server({"listeners": {"web": {"address": "127.0.0.1", "port": free_port()}},
                          "guard": {"trusted": [], "delay_first": 0.01, "delay_max": 0.05, "block_after": blocks}})
    portal.cli("account", "add", "Nguyễn Văn An", "--address", ADDRESS, "--password", INITIAL)
    with ThreadPoolExecutor(blocks) as pool:
        codes = list(pool.map(lambda i: change(portal, ADDRESS, f"Doan-sai-{i}-2026!", NEW)[0], range(blocks)))
    assert codes == [403] * blocks
    status, body = change(portal, ADDRESS, INITIAL, NEW)
    assert status == 429 and "Quá nhiều lần thử" in body and "Too many attempts" in body
    c = imaplib.IMAP4(portal.host, portal.port("imap"))
    with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
        c.login(ADDRESS, INITIAL)
    c.logout()
    c = _FromElsewhere(portal.host, portal.port("imap"))
    assert c.login(ADDRESS, INITIAL)[0] == "OK"
    c.logout()


class _FromElsewhere(imaplib.IMAP4):
    """imaplib from the loopback address 127.0.0.2 (another client than the tests' 127.0.0.1)."""

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=("127.0.0.2", 0))
