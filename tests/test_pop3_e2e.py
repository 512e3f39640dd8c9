"""POP3 end to end: the real server (``server`` fixture), real sockets, poplib, fetchmail, getmail.

Mail goes in over SMTP (smtplib to the MX port), except bodies SMTP cannot carry (no final CRLF)
or that would slow the suite (30 MB), which are delivered through the store API.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import poplib
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from storage.api import DeliveryTarget

pytestmark = pytest.mark.requirement("R-PROTO-1")

OK = b"+OK"
ERR = b"-ERR"
ERR_AUTH = b"-ERR [AUTH]"
ERR_IN_USE = b"-ERR [IN-USE]"
PASSWORD = "Mk-2026-an-toàn"
SUBJECT = "Công văn số 12 về việc triển khai thư điện tử"
VIETNAMESE = (
    f"From: Phòng Hành chính <hanhchinh@example.gov.vn>\r\n"
    f"Subject: {SUBJECT}\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Kính gửi các đơn vị trực thuộc,\r\n"
    ".Dòng này bắt đầu bằng dấu chấm.\r\n"
    ".\r\n"
    "..hai dấu chấm\r\n"
    "Trân trọng.\r\n"
).encode()
_numbers = itertools.count(1)


def tls_client_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test server's certificate is self-signed
    return ctx


@pytest.fixture
def mailbox(server):
    """A fresh account (its own maildrop, so tests do not see each other's mail)."""
    address = f"pop{next(_numbers)}.{os.getpid()}@{server.domain}"
    server.add_account(address, PASSWORD)
    return address


def send_smtp(server, rcpt: str, message: bytes) -> None:
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=30) as smtp:
        smtp.sendmail(f"sender@{server.domain}", [rcpt], message, mail_options=["BODY=8BITMIME"])


def deliver_direct(server, rcpt: str, message: bytes) -> None:
    store = server.open_store()
    try:
        account = store.accounts.get_account(rcpt)
        [outcome] = store.messages.deliver(store.messages.put_blob(message), [DeliveryTarget(account.id)])
        assert outcome.ok, outcome
    finally:
        store.close()


def login(server, address: str) -> poplib.POP3:
    client = poplib.POP3(server.host, server.port("pop3"), timeout=30)
    client.user(address)
    client.pass_(PASSWORD)
    return client


def retr(client: poplib.POP3, number: int) -> bytes:
    """RETR with poplib's own un-stuffing, lines joined back with CRLF."""
    _, lines, _ = client.retr(number)
    return b"\r\n".join(lines) + b"\r\n"


class Raw:
    """A POP3 conversation on a bare socket, to see the exact bytes on the wire."""

    def __init__(self, server) -> None:
        self.sock = socket.create_connection((server.host, server.port("pop3")), timeout=30)
        self.file = self.sock.makefile("rb")
        self.greeting = self.file.readline()

    def command(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.file.readline()

    def multiline(self) -> bytes:
        out = b""
        while (line := self.file.readline()) != b".\r\n":
            assert line, "connection closed inside a multi-line response"
            out += line
        return out

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_poplib_retrieves_vietnamese_8bit_mail_sent_over_smtp(server, mailbox):
    send_smtp(server, mailbox, VIETNAMESE)
    client = login(server, mailbox)
    count, size = client.stat()
    assert count == 1
    message = retr(client, 1)
    assert message.endswith(VIETNAMESE) and len(message) == size  # server headers prepended
    assert email.message_from_bytes(message, policy=email.policy.default)["Subject"] == SUBJECT
    client.quit()


def test_dot_lines_are_stuffed_on_the_wire(server, mailbox):
    send_smtp(server, mailbox, VIETNAMESE)
    raw = Raw(server)
    assert raw.command(b"USER " + mailbox.encode()).startswith(OK)
    assert raw.command(b"PASS " + PASSWORD.encode()).startswith(OK)
    assert raw.command(b"RETR 1").startswith(OK)
    body = raw.multiline()
    assert "\r\n..Dòng này".encode() in body and b"\r\n..\r\n" in body and b"\r\n...hai" in body
    assert raw.command(b"QUIT").startswith(OK)
    raw.close()


def test_body_without_final_crlf_and_line_one_dot(server, mailbox):
    deliver_direct(server, mailbox, b".Subject-less first line\r\n\r\nno final newline")
    raw = Raw(server)
    raw.command(b"USER " + mailbox.encode())
    raw.command(b"PASS " + PASSWORD.encode())
    assert raw.command(b"RETR 1").startswith(OK)
    assert raw.multiline() == b"..Subject-less first line\r\n\r\nno final newline\r\n"
    assert raw.command(b"TOP 1 0").startswith(OK)
    assert raw.multiline() == b"..Subject-less first line\r\n\r\n"
    raw.close()


def test_stls_upgrades_and_login_works_after(server, mailbox):
    client = poplib.POP3(server.host, server.port("pop3"), timeout=30)
    assert "STLS" in client.capa()
    client.stls(tls_client_context())
    caps = client.capa()
    assert "STLS" not in caps and caps["SASL"] == ["PLAIN"]
    client.user(mailbox)
    assert client.pass_(PASSWORD).startswith(OK)
    client.quit()


def test_stls_ignores_commands_pipelined_before_the_handshake(server, mailbox):
    raw = Raw(server)
    raw.sock.sendall(f"STLS\r\nUSER {mailbox}\r\nPASS {PASSWORD}\r\n".encode())
    assert raw.file.readline() == b"+OK Begin TLS negotiation\r\n"
    tls = tls_client_context().wrap_socket(raw.sock)
    tls_file = tls.makefile("rb")
    tls.sendall(b"STAT\r\n")  # would succeed if the injected USER/PASS had been run after TLS
    assert tls_file.readline().startswith(b"-ERR Command not valid")
    tls.sendall(b"QUIT\r\n")
    assert tls_file.readline().startswith(OK)
    tls.close()


def test_pop3s_implicit_tls(server, mailbox):
    send_smtp(server, mailbox, VIETNAMESE)
    client = poplib.POP3_SSL(server.host, server.port("pop3s"), context=tls_client_context(), timeout=30)
    assert "STLS" not in client.capa()
    client.user(mailbox)
    client.pass_(PASSWORD)
    assert retr(client, 1).endswith(VIETNAMESE)
    client.quit()


def test_auth_plain_with_and_without_initial_response(server, mailbox):
    import base64

    token = base64.b64encode(f"\0{mailbox}\0{PASSWORD}".encode())
    raw = Raw(server)
    assert raw.command(b"AUTH PLAIN " + token).startswith(OK)
    raw.command(b"QUIT")
    raw.close()
    raw = Raw(server)
    assert raw.command(b"AUTH PLAIN") == b"+ \r\n"
    assert raw.command(token).startswith(OK)
    raw.close()


def test_uidl_is_rfc1939_and_stable_across_sessions(server, mailbox):
    send_smtp(server, mailbox, VIETNAMESE)
    send_smtp(server, mailbox, VIETNAMESE)
    client = login(server, mailbox)
    _, listing, _ = client.uidl()
    first = client.uidl(2)
    client.quit()
    number, uid = first.split()[1:]
    assert number == b"2" and listing[1] == b"2 " + uid
    client = login(server, mailbox)
    assert client.uidl()[1] == listing
    client.quit()


def test_top_returns_headers_and_n_body_lines(server, mailbox):
    send_smtp(server, mailbox, VIETNAMESE)
    client = login(server, mailbox)
    _, lines, _ = client.top(1, 2)
    blank = lines.index(b"")
    assert lines[blank + 1:] == ["Kính gửi các đơn vị trực thuộc,".encode(), ".Dòng này bắt đầu bằng dấu chấm.".encode()]
    client.quit()


def test_dele_takes_effect_at_quit_and_rset_undoes(server, mailbox):
    for _ in range(3):
        send_smtp(server, mailbox, VIETNAMESE)
    client = login(server, mailbox)
    uids = client.uidl()[1]
    client.dele(1)
    client.dele(2)
    with pytest.raises(poplib.error_proto, match="already deleted"):
        client.dele(1)
    with pytest.raises(poplib.error_proto, match="No such message"):
        client.dele(9)
    client.rset()
    client.dele(2)
    assert client.stat()[0] == 2
    client.quit()
    client = login(server, mailbox)
    assert client.uidl()[1] == [b"1 " + uids[0].split()[1], b"2 " + uids[2].split()[1]]
    client.quit()


def test_dele_without_quit_removes_nothing(server, mailbox):
    send_smtp(server, mailbox, VIETNAMESE)
    client = login(server, mailbox)
    client.dele(1)
    client.sock.shutdown(socket.SHUT_RDWR)  # connection lost: no UPDATE state (RFC 1939)
    client.close()
    deadline = time.monotonic() + 10
    while True:  # the lock is released when the server notices the close
        try:
            client = login(server, mailbox)
            break
        except poplib.error_proto as exc:
            assert b"[IN-USE]" in exc.args[0] and time.monotonic() < deadline
            time.sleep(0.05)
    assert client.stat()[0] == 1
    client.quit()


def test_second_session_gets_in_use_and_lock_is_released_by_quit(server, mailbox):
    first = login(server, mailbox)
    second = poplib.POP3(server.host, server.port("pop3"), timeout=30)
    second.user(mailbox)
    with pytest.raises(poplib.error_proto) as refused:
        second.pass_(PASSWORD)
    assert refused.value.args[0].startswith(ERR_IN_USE)
    implicit = poplib.POP3_SSL(server.host, server.port("pop3s"), context=tls_client_context(), timeout=30)
    implicit.user(mailbox)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        implicit.pass_(PASSWORD)  # one lock table for both listeners
    first.quit()
    second.user(mailbox)
    assert second.pass_(PASSWORD).startswith(OK)
    second.quit()
    implicit.quit()


def test_wrong_password_and_unknown_user_same_reply(server, mailbox):
    replies = []
    for user, password in ((mailbox, "wrong-password"), (f"nobody-here@{server.domain}", PASSWORD),
                           ("no-at-sign", PASSWORD)):
        raw = Raw(server)
        raw.command(b"USER " + user.encode())
        replies.append(raw.command(b"PASS " + password.encode()))
        raw.close()
    assert len(set(replies)) == 1 and replies[0].startswith(ERR_AUTH)


def test_bad_commands_get_err_and_session_continues(server, mailbox):
    raw = Raw(server)
    for line in (b"HELO", b"STAT", b"RETR 1", b"", b"\xff\xfe", b"X" * 10000, b"APOP a b", b"USER"):
        reply = raw.command(line)
        assert reply.startswith(ERR) and b"Error" not in reply and b"Traceback" not in reply, (line, reply)
    raw.command(b"USER " + mailbox.encode())
    assert raw.command(b"PASS " + PASSWORD.encode()).startswith(OK)
    for line in (b"RETR 0", b"RETR 99999999999", b"RETR -1", b"TOP 1", b"LIST a", b"DELE", b"UIDL 1 2", b"USER x"):
        assert raw.command(line).startswith(ERR), line
    assert raw.command(b"NOOP") == b"+OK\r\n"
    assert raw.command(b"QUIT").startswith(OK)
    raw.close()


def test_pipelined_commands_answer_in_order(server, mailbox):
    send_smtp(server, mailbox, VIETNAMESE)
    raw = Raw(server)
    raw.sock.sendall(f"USER {mailbox}\r\nPASS {PASSWORD}\r\nSTAT\r\nRETR 1\r\nNOOP\r\nQUIT\r\n".encode())
    assert raw.file.readline().startswith(OK)
    assert raw.file.readline().startswith(b"+OK Maildrop has 1 messages")
    assert raw.file.readline().startswith(b"+OK 1 ")
    assert raw.file.readline().startswith(OK)
    assert raw.multiline().endswith("Trân trọng.\r\n".encode())
    assert raw.file.readline() == b"+OK\r\n"
    assert raw.file.readline().startswith(OK)
    raw.close()


def test_thirty_megabyte_message_streams_intact(server, mailbox):
    line = b"0123456789" * 7 + b"\r\n"
    body = b"".join(b"." + line if i % 1000 == 0 else line for i in range(30 * 1024 * 1024 // len(line)))
    message = b"Subject: big\r\n\r\n" + body
    deliver_direct(server, mailbox, message)
    client = login(server, mailbox)
    assert retr(client, 1) == message
    client.quit()


def test_plaintext_login_refused_when_loopback_exception_is_off(make_server):
    own = make_server({"tls": {"allow_plaintext_auth_on_loopback": False}})
    address = f"strict@{own.domain}"
    own.add_account(address, PASSWORD)
    client = poplib.POP3(own.host, own.port("pop3"), timeout=30)
    assert "USER" not in client.capa()
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        client.user(address)
    client.stls(tls_client_context())
    client.user(address)
    assert client.pass_(PASSWORD).startswith(OK)
    client.quit()


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail is not installed")
def test_fetchmail_over_stls_gets_vietnamese_subject_intact(server, mailbox, tmp_path):
    send_smtp(server, mailbox, VIETNAMESE)
    mbox = tmp_path / "mbox"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f"poll {server.host} service {server.port('pop3')} protocol pop3 auth password timeout 30\n"
        f'  user "{mailbox}" there with password "{PASSWORD}" is "{os.environ.get("USER", "root")}" here\n'
        '  sslproto "tls1.2+" no sslcertck\n'
        f"  mda \"/bin/sh -c 'cat >> {mbox}'\"\n",
        encoding="utf-8",
    )
    rc.chmod(0o600)
    result = subprocess.run(
        ["fetchmail", "-f", str(rc), "-i", str(tmp_path / "ids"), "-v", "--nodetach"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "upgrade to TLS succeeded" in output, output
    fetched = mbox.read_bytes() if mbox.exists() else b""
    assert f"Subject: {SUBJECT}\n".encode() in fetched.replace(b"\r\n", b"\n"), output
    assert email.message_from_bytes(fetched, policy=email.policy.default)["Subject"] == SUBJECT
    client = login(server, mailbox)
    assert client.stat()[0] == 0  # fetchmail deleted what it fetched, at QUIT
    client.quit()


def getmail_run(server, mailbox, tmp_path, *, delete: bool) -> tuple[subprocess.CompletedProcess, bytes]:
    """One getmail run over pop3s into an mbox file; returns its output and the mbox so far."""
    mbox = tmp_path / "mbox"
    (tmp_path / "getmailrc").write_text(
        "[retriever]\ntype = SimplePOP3SSLRetriever\n"
        f"server = {server.host}\nport = {server.port('pop3s')}\nusername = {mailbox}\npassword = {PASSWORD}\n"
        "[destination]\ntype = MDA_external\npath = /bin/sh\n"
        f"arguments = (\"-c\", \"cat >> {mbox}\")\nallow_root_commands = true\n"
        f"[options]\nread_all = false\ndelete = {str(delete).lower()}\nverbose = 2\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        ["getmail", "--getmaildir", str(tmp_path), "--rcfile", "getmailrc"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result, mbox.read_bytes() if mbox.exists() else b""


@pytest.mark.skipif(shutil.which("getmail") is None, reason="getmail is not installed")
def test_getmail_over_pop3s_uses_uidl_to_fetch_only_new_mail(server, mailbox, tmp_path):
    send_smtp(server, mailbox, VIETNAMESE)
    result, fetched = getmail_run(server, mailbox, tmp_path, delete=False)
    assert "1 messages" in result.stdout and f"Subject: {SUBJECT}".encode() in fetched
    result, again = getmail_run(server, mailbox, tmp_path, delete=False)
    assert again == fetched  # same UIDLs in a new session: nothing fetched twice
    send_smtp(server, mailbox, VIETNAMESE.replace(b"12", b"13"))
    result, more = getmail_run(server, mailbox, tmp_path, delete=True)
    assert more.count(b"Subject: ") == 2 and "Công văn số 13".encode() in more
    client = login(server, mailbox)
    assert client.stat()[0] == 0  # delete = true: DELE + QUIT committed
    client.quit()
