"""Login guessing against the real server (R-SEC-1): one attacker address guessing over IMAP,
POP3 and submission is delayed more at each failure, then refused unchecked on every protocol,
while the owner still logs in from another address; the PROXY header (v1, v2) names the client;
every login is one log line that the real fail2ban-regex reads; connection and SMTP command limits.

Addresses: the server trusts the tests' own 127.0.0.1 (tests/conftest.py); the attacker connects
from 127.0.0.2, the proxy from 127.0.0.3 (which may only speak through PROXY headers), limits are
tried from 127.0.0.5. Delays are a test configuration of tens of milliseconds.
"""

from __future__ import annotations

import base64
import email
import email.policy
import imaplib
import ipaddress
import os
import poplib
import re
import shutil
import smtplib
import socket
import ssl
import struct
import subprocess
import time
from pathlib import Path

import pytest
from tests.conftest import wait_until

pytestmark = pytest.mark.requirement("R-SEC-1")

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Mk-2026-an-toan!"
ATTACKER, PROXY, LIMITED = "127.0.0.2", "127.0.0.3", "127.0.0.5"
GUARD = {"delay_first": 0.05, "delay_max": 0.4, "block_after": 12, "block_seconds": 600,
         "connections_per_address": 4, "smtp_bad_commands_per_session": 5, "imap_sessions_per_account": 3,
         "submission_messages_per_hour": 2, "submission_recipients_per_hour": 3}
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v1(client: str, port: int = 40000) -> bytes:
    family = "TCP6" if ":" in client else "TCP4"
    server = "::1" if ":" in client else "127.0.0.1"
    return f"PROXY {family} {client} {server} {port} 143\r\n".encode()


def proxy_v2(client: str, port: int = 40000) -> bytes:
    body = ipaddress.IPv4Address(client).packed + ipaddress.IPv4Address("127.0.0.1").packed + struct.pack("!HH", port, 143)
    return V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def connect(port: int, source: str, header: bytes = b"", timeout: float = 30) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    if header:
        sock.sendall(header)
    return sock


class IMAP(imaplib.IMAP4):
    def __init__(self, port: int, source: str, header: bytes = b"") -> None:
        self._source, self._header = source, header
        super().__init__("127.0.0.1", port, timeout=30)

    def _create_socket(self, timeout):
        return connect(self.port, self._source, self._header)


class POP3(poplib.POP3):
    def __init__(self, port: int, source: str, header: bytes = b"") -> None:
        self._source, self._header = source, header
        super().__init__("127.0.0.1", port, timeout=30)

    def _create_socket(self, timeout):
        return connect(self.port, self._source, self._header)


class SMTP(smtplib.SMTP):
    def __init__(self, port: int, source: str, header: bytes = b"") -> None:
        self._header = header
        super().__init__("127.0.0.1", port, timeout=30, source_address=(source, 0))

    def _get_socket(self, host, port, timeout):
        return connect(port, self.source_address[0], self._header)


def client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test server's certificate is self-signed
    return ctx


def try_imap(srv, user, password, source=ATTACKER, header=b"", tls=False) -> str:
    with IMAP(srv.port("imap"), source, header) as c:
        if tls:
            c.starttls(client_tls())
        try:
            c.login(user, password)
            return "ok"
        except imaplib.IMAP4.error as e:
            return "blocked" if "[UNAVAILABLE]" in str(e) else "fail"


def try_pop3(srv, user, password, source=ATTACKER, header=b"", tls=False) -> str:
    c = POP3(srv.port("pop3"), source, header)
    if tls:
        c.stls(client_tls())
    try:
        c.user(user)
        c.pass_(password)
        return "ok"
    except poplib.error_proto as e:
        return "blocked" if b"[SYS/TEMP]" in e.args[0] else "fail"
    finally:
        c.close()


def try_submission(srv, user, password, source=ATTACKER, header=b"", tls=False) -> str:
    with SMTP(srv.port("submission"), source, header) as c:
        c.ehlo("probe.test")
        if tls:
            c.starttls(context=client_tls())
            c.ehlo("probe.test")
        blob = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        code, text = c.docmd("AUTH", "PLAIN " + blob)
        return {235: "ok", 454: "blocked", 535: "fail"}[code]


PROTOCOLS = (try_imap, try_pop3, try_submission)


@pytest.fixture(scope="module", params=["sqlite"] + (["postgresql"] if os.environ.get("MAILSERVER_TEST_DATABASE_URL") else []))
def guarded(request, tmp_path_factory):
    from tests.conftest import Server

    srv = Server(tmp_path_factory.mktemp(f"guard-{request.param}"), request.param,
                 {"guard": GUARD, "proxy": {"trusted": [f"{PROXY}/32"]}})
    try:
        srv.start()
        srv.owner = f"owner@{srv.domain}"
        srv.add_account(srv.owner, PASSWORD)
        srv.add_account(f"postmaster@{srv.domain}", PASSWORD, name="Quản trị hệ thống")
        yield srv
    finally:
        srv.destroy()


def log_lines(srv, pattern: str) -> list[str]:
    return [line for line in srv.log().splitlines() if re.search(pattern, line)]


def test_probe_of_200_guesses_is_slowed_then_blocked_while_the_owner_logs_in_elsewhere(guarded):
    srv = guarded
    results, times = [], []
    for i in range(200):
        started = time.monotonic()
        results.append(PROTOCOLS[i % 3](srv, srv.owner, f"guess-{i}"))
        times.append(time.monotonic() - started)
    fails = results.index("blocked")
    assert fails == GUARD["block_after"] and set(results[:fails]) == {"fail"}
    assert set(results[fails:]) == {"blocked"}  # on all three protocols, without a password check
    # the n-th failure is answered no sooner than the n-th penalty, whatever the protocol: the
    # delay doubles to its cap, then stays (lower bounds only: a loaded machine adds, never subtracts)
    penalties = [min(GUARD["delay_max"], GUARD["delay_first"] * 2**n) for n in range(fails)]
    assert penalties[-1] == GUARD["delay_max"] > penalties[0]
    assert all(took >= least * 0.9 for took, least in zip(times, penalties)), list(zip(times, penalties))
    blocked_rate = (200 - fails) / sum(times[fails:])
    print(f"\nguessing: {fails} guesses in {sum(times[:fails]):.2f} s, then blocked "
          f"({blocked_rate:.0f} refusals/s, no password checked)")
    # the owner, from another address (through the proxy, with TLS as any remote client, and
    # directly), is let in at once
    for attempt, header in zip(PROTOCOLS, (proxy_v1("198.51.100.7"), proxy_v2("198.51.100.8"), proxy_v1("2001:db8::7"))):
        started = time.monotonic()
        assert attempt(srv, srv.owner, PASSWORD, source=PROXY, header=header, tls=True) == "ok"
        assert time.monotonic() - started < 5
    assert try_imap(srv, srv.owner, PASSWORD, source="127.0.0.4") == "ok"
    # the account's failures still slow a wrong password from a clean address
    started = time.monotonic()
    assert try_imap(srv, srv.owner, "wrong", source=PROXY, header=proxy_v1("198.51.100.9"), tls=True) == "fail"
    assert time.monotonic() - started >= GUARD["delay_max"] * 0.9
    # one line per login: protocol, client (the PROXY header's), result, reason, the name as typed
    assert len(log_lines(srv, rf"login protocol=\S+ client={ATTACKER} result=fail reason=credentials user=\"{srv.owner}\"")) == fails
    assert len(log_lines(srv, rf"login protocol=\S+ client={ATTACKER} result=refused reason=blocked")) == 200 - fails
    for protocol, client in (("imap", "198.51.100.7"), ("pop3", "198.51.100.8"), ("submission", "2001:db8::7")):
        assert log_lines(srv, rf"login protocol={protocol} client={re.escape(client)} result=ok reason=password")


def test_fail2ban_regex_reads_the_log_the_server_wrote(guarded):
    srv = guarded
    if shutil.which("fail2ban-regex") is None:
        pytest.skip("fail2ban-regex not installed (Debian package fail2ban)")
    for i in range(3):
        try_imap(srv, f"nobody{i}@{srv.domain}", "x", source="127.0.0.7")
    try_imap(srv, srv.owner, PASSWORD, source="127.0.0.8")
    wait_until(lambda: log_lines(srv, "client=127.0.0.8 result=ok"), what="the owner's login logged")
    out = subprocess.run(["fail2ban-regex", "-v", str(srv.log_path), str(ROOT / "contrib/fail2ban/mailserver.conf")],
                         capture_output=True, text=True, check=True).stdout
    hits = re.findall(r"^\|\s+(\S+)\s+\w{3} \w{3} ", out, re.M)
    assert hits.count("127.0.0.7") == 3
    assert "127.0.0.8" not in hits and "198.51.100.7" not in hits  # successful logins never match
    failed = sum(1 for line in srv.log().splitlines() if re.search(r"mailserver\.login: (login .*result=(fail|refused)|limit )", line))
    assert int(re.search(r"Failregex: (\d+) total", out).group(1)) == failed


def test_connections_per_address_are_limited_on_every_service(guarded):
    srv = guarded
    for service, refusal in (("imap", b"* BYE [UNAVAILABLE]"), ("pop3", b"-ERR [SYS/TEMP]"), ("smtp", b"421 4.7.0")):
        held = [connect(srv.port(service), LIMITED) for _ in range(GUARD["connections_per_address"])]
        try:
            for sock in held:
                assert sock.recv(200)  # greeted
            extra = connect(srv.port(service), LIMITED)
            assert extra.recv(200).startswith(refusal)
            extra.close()
            other = connect(srv.port(service), "127.0.0.9")  # another address is served
            assert not other.recv(200).startswith(refusal)
            other.close()
        finally:
            for sock in held:
                sock.close()
    assert log_lines(srv, rf"limit protocol=imap client={LIMITED} limit=connections")


def test_smtp_bad_commands_end_the_session(guarded):
    srv = guarded
    with SMTP(srv.port("smtp"), "127.0.0.10") as c:
        c.ehlo("probe.test")
        codes = [c.docmd("MAIL", "garbage")[0] for _ in range(GUARD["smtp_bad_commands_per_session"] - 1)]
        assert set(codes) == {501}
        code, text = c.docmd("MAIL", "garbage")
        assert code == 501
        assert c.getreply()[0] == 421
    assert log_lines(srv, r"limit protocol=smtp client=127\.0\.0\.10 limit=bad-commands")


def test_a_connection_from_the_proxy_without_a_header_is_closed_unserved(guarded):
    """Anything else from the proxy's address could claim any client: no greeting, closed."""
    for service in ("imap", "pop3", "smtp"):
        with connect(guarded.port(service), PROXY, b"a1 LOGIN x y\r\n") as sock:
            try:
                assert sock.recv(200) == b""
            except ConnectionResetError:
                pass


def test_hourly_sending_limits_refuse_with_451_and_tell_the_postmaster_once(guarded):
    srv = guarded
    sender, many = f"sender@{srv.domain}", f"many@{srv.domain}"
    srv.add_account(sender, PASSWORD)
    srv.add_account(many, PASSWORD)
    message = "Subject: =?utf-8?b?VGjhu60=?=\r\n\r\nxin chao\r\n"
    with smtplib.SMTP("127.0.0.1", srv.port("submission")) as c:  # the tests' trusted address
        c.login(sender, PASSWORD)
        c.sendmail(sender, [srv.owner], message)
        c.sendmail(sender, [srv.owner, many], message)
        for _ in range(2):  # the third message of the hour, asked twice
            code, text = c.mail(sender)
            assert (code, text[:5]) == (451, b"4.7.1")
            c.rset()
    with smtplib.SMTP("127.0.0.1", srv.port("submission")) as c:
        c.login(many, PASSWORD)
        c.mail(many)
        rcpts = [srv.owner, sender, many, f"postmaster@{srv.domain}"]
        assert [c.rcpt(r)[0] for r in rcpts] == [250, 250, 250, 451]  # the 4th recipient of the hour
    assert log_lines(srv, r"limit protocol=submission client=127\.0\.0\.1 limit=messages-per-hour")
    assert log_lines(srv, r"limit protocol=submission client=127\.0\.0\.1 limit=recipients-per-hour")
    with imaplib.IMAP4("127.0.0.1", srv.port("imap")) as c:
        c.login(f"postmaster@{srv.domain}", PASSWORD)
        c.select("INBOX")
        _, found = c.search(None, "SUBJECT", f'"{sender}"')
        assert len(found[0].split()) == 1  # once an hour, however often refused
        _, data = c.fetch(found[0], "(BODY[])")
        body = email.message_from_bytes(data[0][1], policy=email.policy.default)
        assert body["Subject"].startswith("Tài khoản sender@") and "Sending limit reached" in body["Subject"]
        text = body.get_content()
        assert text.index("giới hạn 2 thư mỗi giờ") < text.index("limit of 2 messages per hour")


def test_imap_sessions_per_account_are_limited(guarded):
    srv = guarded
    user = f"busy@{srv.domain}"
    srv.add_account(user, PASSWORD)
    sessions = []
    try:
        for _ in range(3):
            c = imaplib.IMAP4("127.0.0.1", srv.port("imap"))
            c.login(user, PASSWORD)
            sessions.append(c)
        extra = imaplib.IMAP4("127.0.0.1", srv.port("imap"))
        with pytest.raises(imaplib.IMAP4.error, match=r"\[UNAVAILABLE\] Too many sessions"):
            extra.login(user, PASSWORD)
        sessions.pop().logout()
        def logs_in() -> bool:  # the server counts the session gone once it sees the connection close
            try:
                extra.login(user, PASSWORD)
                return True
            except imaplib.IMAP4.error:
                return False

        wait_until(logs_in, what="a session slot freed by LOGOUT")
        sessions.append(extra)
    finally:
        for c in sessions:
            c.logout()
    assert log_lines(srv, r"limit protocol=imap client=127\.0\.0\.1 limit=sessions-per-account")
