"""The SMTP front end over real sockets against the fake store (tests/fakes.py): dialogue,
reply codes, pipelining, STARTTLS, timeouts, streaming DATA and how store outcomes map to replies."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass

import aiosmtplib
import pytest

from config.settings import Dns, Limits, Listener, Listeners, Settings
from mailserver.maintenance.tls import ensure_certificate
from smtp import replies
from smtp.service import start_smtp
from tests.fakes import FakeStore
from storage.api import AccountState
from storage.errors import ErrorKind, Temp

LOCAL = "annv@example.gov.vn"
OTHER = "binhtt@example.gov.vn"

S250 = "250 2.0.0"
S250_SENDER = replies.S250_SENDER_OK[:9]
S250_RCPT = replies.S250_RECIPIENT_OK[:9]
S354 = replies.S354_START[:9]
S500 = "500 5.5.2"
S501_MAIL = replies.S501_MAIL_SYNTAX[:9]
S501_RCPT = replies.S501_RCPT_SYNTAX[:9]
S503 = "503 5.5.1"
S550_USER = replies.S550_NO_SUCH_USER[:9]
S550_RELAY = replies.S550_RELAY_DENIED[:9]
S550_DISABLED = replies.S550_MAILBOX_DISABLED[:9]
S452_RCPTS = replies.S452_TOO_MANY_RCPTS[:9]
S552_SIZE = replies.S552_MESSAGE_TOO_BIG[:9]
S552_QUOTA = replies.S552_QUOTA[:9]
S451 = replies.S451_TEMP[:9]
S555 = "555 5.5.4"
S421 = "421 4.4.2"


@dataclass
class Mx:
    port: int
    store: FakeStore
    tls: ssl.SSLContext


class Dialogue:
    """A raw SMTP client: exact bytes out, whole (multi-line) replies in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, mx: Mx) -> "Dialogue":
        d = cls(*await asyncio.open_connection("127.0.0.1", mx.port))
        assert (await d.reply()).startswith("220 ")
        return d

    async def reply(self) -> str:
        lines = []
        while True:
            line = (await asyncio.wait_for(self.reader.readline(), 10)).decode("utf-8")
            assert line, "connection closed"
            lines.append(line.rstrip("\r\n"))
            if line[3:4] != "-":
                return "\n".join(lines)

    async def send(self, raw: bytes) -> None:
        self.writer.write(raw)
        await self.writer.drain()

    async def cmd(self, line: str | bytes) -> str:
        await self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return await self.reply()

    async def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def mx_factory(tmp_path):
    servers = []
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ensure_certificate(cert, key, "mx.test")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    async def start(store: FakeStore | None = None, **limits) -> Mx:
        if store is None:
            store = FakeStore()
            store.add(LOCAL)
            store.add(OTHER)
        settings = Settings(
            hostname="mx.test", data_dir=tmp_path,
            listeners=Listeners(smtp=Listener(address="127.0.0.1", port=0)), limits=Limits(**limits),
            dns=Dns(static_only=True),  # SPF/DKIM look-ups answered without the network
        )  # fmt: skip
        server = (await start_smtp(settings, store, None, tls))[0]
        servers.append(server)
        return Mx(server.sockets[0].getsockname()[1], store, tls)

    yield start
    for s in servers:
        s.close()


@pytest.fixture
async def mx(mx_factory) -> Mx:
    return await mx_factory()


def client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


MESSAGE = (
    "From: Trần Thị Bình <binh@other.gov.vn>\r\nTo: annv@example.gov.vn\r\n"
    "Subject: Công văn số 12\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\nKính gửi anh An,\r\n.dòng bắt đầu bằng dấu chấm\r\n"
).encode()


async def test_ehlo_advertises_the_required_extensions_and_no_auth_on_mx(mx):
    d = await Dialogue.open(mx)
    reply = await d.cmd("EHLO client.test")
    keywords = {line[4:].split()[0] for line in reply.splitlines()[1:]}
    assert {"SIZE", "8BITMIME", "SMTPUTF8", "PIPELINING", "ENHANCEDSTATUSCODES", "STARTTLS"} <= keywords
    assert "AUTH" not in keywords
    assert f"250-SIZE {Limits().max_message_size}" in reply
    await d.close()


async def test_delivery_stores_trace_headers_then_the_message_byte_for_byte(mx):
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=mx.port, start_tls=False)
    async with client:
        errors, reply = await client.sendmail("binh@other.gov.vn", [LOCAL], MESSAGE)
    assert errors == {} and reply.startswith("2.0.0 OK")
    (stored,) = mx.store.delivered
    head, sep, rest = stored.blob.partition(b"\r\n\r\n")
    assert stored.blob.startswith(b"Return-Path: <binh@other.gov.vn>\r\nAuthentication-Results: mx.test;\r\n")
    assert b"\r\nReceived: from " in stored.blob and stored.blob.endswith(MESSAGE)
    assert b"\r\n\tdkim=none;\r\n" in stored.blob[: -len(MESSAGE)]  # unsigned: the header section sufficed
    prefix = stored.blob[: len(stored.blob) - len(MESSAGE)]
    assert b"by mx.test with ESMTP id " in prefix and b"for <annv@example.gov.vn>;" in prefix
    assert b"[127.0.0.1]" in prefix and stored.internaldate is not None


async def test_several_recipients_share_one_blob_without_for_clause(mx):
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=mx.port, start_tls=False) as client:
        errors, _ = await client.sendmail("binh@other.gov.vn", [LOCAL, OTHER, LOCAL.upper()], MESSAGE)
    assert errors == {}
    (stored,) = mx.store.delivered
    assert sorted(stored.account_ids) == [1, 2]  # the same account twice gets one copy
    assert b"for <" not in stored.blob[: -len(MESSAGE)]


async def test_recipient_policy_replies(mx_factory):
    store = FakeStore()
    store.add(LOCAL)
    store.add("revoked@example.gov.vn", AccountState.REVOKED)
    store.add("locked@example.gov.vn", AccountState.LOCKED)
    mx = await mx_factory(store, max_recipients=2)
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    assert (await d.cmd("MAIL FROM:<x@other.gov.vn>")).startswith(S250_SENDER)
    assert (await d.cmd("RCPT TO:<nobody@example.gov.vn>")).startswith(S550_USER)
    assert (await d.cmd("RCPT TO:<someone@elsewhere.vn>")).startswith(S550_RELAY)
    assert (await d.cmd("RCPT TO:<revoked@example.gov.vn>")).startswith(S550_DISABLED)
    assert (await d.cmd("RCPT TO:<locked@example.gov.vn>")).startswith(S250_RCPT)  # locked still receives
    assert (await d.cmd(f"RCPT TO:<{LOCAL}>")).startswith(S250_RCPT)
    assert (await d.cmd(f"RCPT TO:<{LOCAL}>")).startswith(S452_RCPTS)
    await d.close()


@pytest.mark.parametrize(
    "command, expected",
    [
        ("MAIL FROM:<a b@c.vn>", S501_MAIL),
        ("MAIL FROM:garbage<<", S501_MAIL),
        ("MAIL TO:<a@b.vn>", S501_MAIL),
        ("MAIL FROM:<a@b.vn> BODY=9BIT", "501 5.5.4"),
        ("MAIL FROM:<a@b.vn> XYZZY=1", S555),  # unknown parameter (RET= is DSN now: tests/test_smtp_dsn.py)
        ("MAIL FROM:<tên@b.vn>", S501_MAIL),  # UTF-8 address without SMTPUTF8
        ("RCPT TO:<a@b.vn>", S503),
        ("DATA", S503),
        ("FOO bar", S500),
        ("", S500),
        (b"\xff\xfe", S500),
        ("MAIL FROM:<" + "a" * 1100 + "@b.vn>", S500),
        ("NOOP " + "x" * 600, S500),
        ("VRFY annv", "252 2.5.0"),
        ("EXPN staff", "502 5.5.1"),
        ("NOOP", "250 2.0.0"),
        ("RSET", "250 2.0.0"),
    ],
)
async def test_malformed_and_out_of_order_commands_get_enhanced_errors_and_the_session_goes_on(mx, command, expected):
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    reply = await d.cmd(command)
    assert reply.startswith(expected + " "), reply
    assert (await d.cmd("MAIL FROM:<x@other.gov.vn>")).startswith(S250_SENDER)
    assert (await d.cmd("QUIT")).startswith("221 2.0.0")
    await d.close()


async def test_rcpt_syntax_and_parameters_and_data_before_rcpt(mx):
    d = await Dialogue.open(mx)
    assert (await d.cmd("MAIL FROM:<x@other.gov.vn>")).startswith(S503)  # before EHLO
    await d.cmd("EHLO client.test")
    await d.cmd("MAIL FROM:<x@other.gov.vn>")
    assert (await d.cmd("MAIL FROM:<y@other.gov.vn>")).startswith(S503)
    assert (await d.cmd("RCPT TO:<annv@@example.gov.vn>")).startswith(S501_RCPT)
    assert (await d.cmd("RCPT TO:<>")).startswith(S501_RCPT)
    assert (await d.cmd(f"RCPT TO:<{LOCAL}> XYZZY=1")).startswith(S555)
    assert (await d.cmd("DATA")).startswith(S503)
    assert (await d.cmd(f"RCPT TO:<{LOCAL}>")).startswith(S250_RCPT)
    assert (await d.cmd("DATA")).startswith(S354)
    assert (await d.cmd(b"Subject: x\r\n\r\nbody\r\n.")).startswith(S250)
    await d.close()


async def test_null_sender_is_accepted_for_bounces(mx):
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    assert (await d.cmd("MAIL FROM:<>")).startswith(S250_SENDER)
    await d.cmd(f"RCPT TO:<{LOCAL}>")
    await d.cmd("DATA")
    assert (await d.cmd(b"Subject: bounce\r\n\r\n.")).startswith(S250)
    assert mx.store.delivered[0].blob.startswith(b"Return-Path: <>\r\n")
    await d.close()


async def test_smtputf8_addresses_are_accepted_and_recorded(mx_factory):
    store = FakeStore(domains={"bộ.gov.vn"})
    store.add("nguyễn@bộ.gov.vn")
    mx = await mx_factory(store)
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    assert (await d.cmd("MAIL FROM:<trần@khác.vn> SMTPUTF8")).startswith(S250_SENDER)
    assert (await d.cmd("RCPT TO:<nguyễn@bộ.gov.vn>")).startswith(S250_RCPT)
    await d.cmd("DATA")
    assert (await d.cmd("Subject: thử\r\n\r\nnội dung\r\n.")).startswith(S250)
    blob = store.delivered[0].blob
    assert "Return-Path: <trần@khác.vn>".encode() in blob and b"with UTF8SMTP id" in blob
    assert "for <nguyễn@bộ.gov.vn>;".encode() in blob
    await d.close()


async def test_pipelined_commands_get_replies_in_order_also_after_the_final_dot(mx):
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    await d.send(
        f"MAIL FROM:<x@other.gov.vn>\r\nRCPT TO:<{LOCAL}>\r\nRCPT TO:<nobody@example.gov.vn>\r\n"
        f"RCPT TO:<{OTHER}>\r\nDATA\r\n".encode()
    )
    got = [await d.reply() for _ in range(5)]
    assert [r[:9] for r in got] == [S250_SENDER, S250_RCPT, S550_USER, S250_RCPT, S354]
    await d.send(b"Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<y@other.gov.vn>\r\nRCPT TO:<" + LOCAL.encode() + b">\r\nDATA\r\n")
    got = [await d.reply() for _ in range(4)]
    assert [r[:9] for r in got] == [S250, S250_SENDER, S250_RCPT, S354]
    assert (await d.cmd(b"Subject: two\r\n\r\nsecond\r\n.")).startswith(S250)
    assert len(mx.store.delivered) == 2 and mx.store.delivered[1].blob.endswith(b"second\r\n")
    await d.close()


async def test_size_limit_at_mail_and_during_data_then_the_session_goes_on(mx_factory):
    mx = await mx_factory(max_message_size=10_000)
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    assert (await d.cmd("MAIL FROM:<x@other.gov.vn> SIZE=10001")).startswith(S552_SIZE)
    assert (await d.cmd("MAIL FROM:<x@other.gov.vn> SIZE=9000")).startswith(S250_SENDER)
    await d.cmd(f"RCPT TO:<{LOCAL}>")
    await d.cmd("DATA")
    assert (await d.cmd(b"Subject: big\r\n\r\n" + b"0123456789abcdef\r\n" * 1000 + b".")).startswith(S552_SIZE)
    assert mx.store.delivered == []
    assert (await d.cmd("MAIL FROM:<x@other.gov.vn>")).startswith(S250_SENDER)
    await d.cmd(f"RCPT TO:<{LOCAL}>")
    await d.cmd("DATA")
    assert (await d.cmd(b"Subject: small\r\n\r\nok\r\n.")).startswith(S250)
    await d.close()


async def test_long_body_lines_are_accepted_and_stored_intact_but_a_giant_line_is_refused(mx):
    long_line = b"Subject: long\r\n\r\n" + b"x" * 50_000 + b"\r\nend\r\n"
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    await d.cmd("MAIL FROM:<x@other.gov.vn>")
    await d.cmd(f"RCPT TO:<{LOCAL}>")
    await d.cmd("DATA")
    assert (await d.cmd(long_line + b".")).startswith(S250)
    assert mx.store.delivered[0].blob.endswith(long_line)
    await d.cmd("MAIL FROM:<x@other.gov.vn>")
    await d.cmd(f"RCPT TO:<{LOCAL}>")
    await d.cmd("DATA")
    assert (await d.cmd(b"Subject: giant\r\n\r\n" + b"y" * (1024 * 1024 + 10) + b"\r\n.")).startswith(S500)
    assert len(mx.store.delivered) == 1
    assert (await d.cmd("NOOP")).startswith(S250)
    await d.close()


async def _send_one(mx: Mx) -> str:
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    await d.cmd("MAIL FROM:<x@other.gov.vn>")
    await d.cmd(f"RCPT TO:<{LOCAL}>")
    await d.cmd(f"RCPT TO:<{OTHER}>")
    await d.cmd("DATA")
    reply = await d.cmd(b"Subject: s\r\n\r\nbody\r\n.")
    assert (await d.cmd("NOOP")).startswith(S250)  # the session survives whatever happened
    await d.close()
    return reply


async def test_every_recipient_over_quota_at_commit_gives_552_5_2_2(mx):
    mx.store.fail_targets = {1: ErrorKind.NOQUOTA, 2: ErrorKind.NOQUOTA}
    assert (await _send_one(mx)).startswith(S552_QUOTA)


async def test_temporary_store_failure_gives_451_and_stores_nothing(mx):
    mx.store.raise_on_deliver = Temp("database is locked")
    reply = await _send_one(mx)
    assert reply.startswith(S451) and "locked" not in reply and mx.store.delivered == []


async def test_partial_failure_replies_250_and_logs_the_dropped_dsn_of_a_remote_sender_without_queue(mx, caplog):
    mx.store.fail_targets = {2: ErrorKind.NOQUOTA}
    with caplog.at_level(logging.ERROR, logger="smtp.bounce"):
        assert (await _send_one(mx)).startswith(S250)
    assert mx.store.delivered[0].account_ids == [1]
    assert any("DSN to remote <x@other.gov.vn> dropped" in r.message and OTHER in r.message for r in caplog.records)


async def test_partial_failure_sends_a_bilingual_rfc3464_dsn_to_a_local_sender(mx):
    """R-QUOTA-1: a recipient whose mailbox filled up during DATA is bounced, not lost."""
    mx.store.fail_targets = {2: ErrorKind.NOQUOTA}
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    await d.cmd(f"MAIL FROM:<{LOCAL}>")
    await d.cmd(f"RCPT TO:<{LOCAL}>")
    await d.cmd(f"RCPT TO:<{OTHER}>")
    await d.cmd("DATA")
    assert (await d.cmd(b"Subject: s\r\n\r\nbody\r\n.")).startswith(S250)
    await d.close()
    message, bounce = mx.store.delivered
    assert message.account_ids == [1] and bounce.account_ids == [1]
    assert b"Content-Type: multipart/report; report-type=delivery-status" in bounce.blob
    text = bounce.blob.decode()
    assert text.index("KHÔNG gửi được") < text.index("could NOT be delivered")  # Vietnamese first
    assert f"Final-Recipient: rfc822; {OTHER}" in text and "Status: 5.2.2" in text and "Action: failed" in text
    assert "Subject: s" in text.split("text/rfc822-headers")[1]  # the original header comes back


async def test_an_unexpected_error_never_reaches_the_client(mx):
    mx.store.raise_on_deliver = RuntimeError("secret internal detail")
    reply = await _send_one(mx)
    assert reply.startswith(S451) and "secret" not in reply and "RuntimeError" not in reply


async def test_starttls_discards_pipelined_plaintext_and_records_esmtps(mx):
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    await d.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.vn>\r\n")
    assert (await d.reply()).startswith("220 2.0.0")
    await d.writer.start_tls(client_tls())
    reply = await d.cmd("EHLO client.test")
    assert "STARTTLS" not in reply
    assert (await d.cmd(f"RCPT TO:<{LOCAL}>")).startswith(S503)  # the injected MAIL was dropped
    await d.cmd("MAIL FROM:<x@other.gov.vn>")
    await d.cmd(f"RCPT TO:<{LOCAL}>")
    await d.cmd("DATA")
    assert (await d.cmd(b"Subject: tls\r\n\r\nsecret\r\n.")).startswith(S250)
    assert b"with ESMTPS id" in mx.store.delivered[0].blob
    await d.close()


async def test_aiosmtplib_starttls_delivery(mx):
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=mx.port, start_tls=True, tls_context=client_tls()) as c:
        errors, _ = await c.sendmail("x@other.gov.vn", [LOCAL], MESSAGE)
    assert errors == {} and b"with ESMTPS id" in mx.store.delivered[0].blob


async def test_smtplib_sendmail_reports_refused_recipients(mx):
    def send():
        with smtplib.SMTP("127.0.0.1", mx.port, local_hostname="client.test") as s:
            return s.sendmail("x@other.gov.vn", [LOCAL, "ghost@example.gov.vn"], MESSAGE)

    refused = await asyncio.to_thread(send)
    assert list(refused) == ["ghost@example.gov.vn"] and refused["ghost@example.gov.vn"][0] == 550
    assert mx.store.delivered[0].blob.endswith(MESSAGE)


async def test_idle_connection_gets_421_then_is_closed(mx_factory):
    mx = await mx_factory(smtp_timeout=1)
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    assert (await d.reply()).startswith(S421)
    assert await asyncio.wait_for(d.reader.read(), 5) == b""
    await d.close()


async def test_each_command_moves_the_idle_deadline_and_idleness_still_ends_the_session(mx_factory):
    """One timer per connection whose deadline each command moves (smtp/protocol.py)."""
    mx = await mx_factory(smtp_timeout=1)
    d = await Dialogue.open(mx)
    loop = asyncio.get_running_loop()
    for _ in range(6):  # 2.4 s in all, never idle for 1 s
        assert (await d.cmd("NOOP")).startswith(S250)
        await asyncio.sleep(0.4)
    quiet = loop.time()
    assert (await d.reply()).startswith(S421)
    assert 0.2 < loop.time() - quiet < 2.5  # due 0.6 s after the last sleep
    assert await asyncio.wait_for(d.reader.read(), 5) == b""
    await d.close()


async def test_slow_but_steady_sender_is_not_cut_off_during_data(mx_factory):
    mx = await mx_factory(smtp_timeout=1)
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    await d.cmd("MAIL FROM:<x@other.gov.vn>")
    await d.cmd(f"RCPT TO:<{LOCAL}>")
    await d.cmd("DATA")
    await d.send(b"Subject: slow\r\n\r\n")
    for i in range(6):  # 2.4 s in all, never idle for 1 s
        await asyncio.sleep(0.4)
        await d.send(b"line %d\r\n" % i)
    assert (await d.cmd(b".")).startswith(S250)
    await d.close()


async def test_twenty_concurrent_clients_all_deliver(mx):
    async def one(i: int):
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=mx.port, start_tls=False) as c:
            for j in range(5):
                await c.sendmail("x@other.gov.vn", [LOCAL], b"Subject: %d-%d\r\n\r\nbody\r\n" % (i, j))

    await asyncio.gather(*(one(i) for i in range(20)))
    assert len(mx.store.delivered) == 100


async def test_broken_mime_is_stored_intact_and_bare_lf_as_crlf(mx):
    broken = b'Content-Type: multipart/mixed; boundary="never"\r\nSubject: \xff\xfe raw\r\n\r\n--nope\nbare lf\rcr\r\n'
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    await d.cmd("MAIL FROM:<x@other.gov.vn> BODY=8BITMIME")
    await d.cmd(f"RCPT TO:<{LOCAL}>")
    await d.cmd("DATA")
    assert (await d.cmd(broken + b".")).startswith(S250)
    assert mx.store.delivered[0].blob.endswith(broken.replace(b"nope\nbare", b"nope\r\nbare"))  # RFC 3501 §4.3
    await d.close()


async def test_client_vanishing_mid_data_stores_nothing_and_the_server_goes_on(mx):
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    await d.cmd("MAIL FROM:<x@other.gov.vn>")
    await d.cmd(f"RCPT TO:<{LOCAL}>")
    await d.cmd("DATA")
    await d.send(b"Subject: cut\r\n\r\n" + b"partial line\r\n" * 1000)
    d.writer.transport.abort()
    # A whole transaction on a new connection ends after the server has handled the abort (the
    # reset reached it first): then nothing of the cut message may be stored.
    assert (await _send_one(mx)).startswith(S250)
    assert mx.store.delivered and not any(b"partial line" in x.blob for x in mx.store.delivered)


async def test_data_checks_can_prepend_headers_between_return_path_and_received(tmp_path):
    """The slot DKIM/SPF use: a passing DATA check's headers go after Return-Path."""
    from smtp.handler import InboundHandler
    from smtp.pipeline import Verdict, build
    from smtp.service import protocol_factory

    async def stamp(ctx):
        assert ctx.spool.read() == b"Subject: s\r\n\r\nbody\r\n"  # checks see the message itself
        ctx.spool.seek(0)
        return Verdict(headers=b"Authentication-Results: mx.test; spf=pass\r\n")

    store = FakeStore()
    store.add(LOCAL)
    store.add(OTHER)
    settings = Settings(hostname="mx.test", data_dir=tmp_path)
    handler = InboundHandler(settings, store, data_checks=[*build("DATA"), ("stamp", stamp)])
    server = await asyncio.get_running_loop().create_server(protocol_factory(settings, handler), "127.0.0.1", 0)
    try:
        assert (await _send_one(Mx(server.sockets[0].getsockname()[1], store, None))).startswith(S250)
    finally:
        server.close()
    blob = store.delivered[0].blob
    assert blob.startswith(b"Return-Path: <x@other.gov.vn>\r\nAuthentication-Results: mx.test; spf=pass\r\nReceived: from ")
    assert blob.endswith(b"\r\nSubject: s\r\n\r\nbody\r\n")


async def test_large_message_is_spooled_to_disk_under_data_dir_and_cleaned_up(mx_factory, tmp_path):
    mx = await mx_factory(smtp_spool_threshold=4096)
    message = b"Subject: big\r\n\r\n" + b"".join(b"line %05d of a long report\r\n" % i for i in range(4000))
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=mx.port, start_tls=False) as client:
        errors, _ = await client.sendmail("x@other.gov.vn", [LOCAL], message)
    assert errors == {} and mx.store.delivered[0].blob.endswith(message)
    spool = tmp_path / "spool"
    assert spool.is_dir() and list(spool.iterdir()) == []  # no spool file left behind


async def test_store_unavailable_at_rcpt_is_a_temporary_failure_for_that_recipient(mx):
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    await d.cmd("MAIL FROM:<x@other.gov.vn>")
    mx.store.raise_on_lookup = Temp("connection refused")
    reply = await d.cmd(f"RCPT TO:<{LOCAL}>")
    assert reply.startswith(S451) and "refused" not in reply
    mx.store.raise_on_lookup = None
    assert (await d.cmd(f"RCPT TO:<{LOCAL}>")).startswith(S250_RCPT)
    await d.close()


async def test_rcpt_to_bare_postmaster_reaches_the_postmaster_account(mx):
    mx.store.add("postmaster@example.gov.vn")
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    await d.cmd("MAIL FROM:<x@other.gov.vn>")
    assert (await d.cmd("RCPT TO:<Postmaster>")).startswith(S250_RCPT)
    await d.cmd("DATA")
    assert (await d.cmd(b"Subject: abuse report\r\n\r\nx\r\n.")).startswith(S250)
    assert mx.store.delivered[0].account_ids == [3]
    await d.close()


async def test_group_address_fans_out_to_members_with_one_body_and_applies_its_send_policy(tmp_path):
    from smtp.handler import InboundHandler
    from smtp.service import protocol_factory
    from tests.fakes import FakeGroups
    from storage.api import AccountKind

    store = FakeStore()
    an, binh = store.add(LOCAL), store.add(OTHER)
    group = store.add("phong@example.gov.vn", kind=AccountKind.GROUP)
    empty = store.add("trong@example.gov.vn", kind=AccountKind.GROUP)
    closed = store.add("kin@example.gov.vn", kind=AccountKind.GROUP)
    groups = FakeGroups(
        members={group.id: [an, binh], closed.id: [an]}, allowed_senders={closed.id: {LOCAL}, empty.id: set()}
    )
    settings = Settings(hostname="mx.test", data_dir=tmp_path)
    server = await asyncio.get_running_loop().create_server(
        protocol_factory(settings, InboundHandler(settings, store, groups=groups)), "127.0.0.1", 0
    )
    try:
        d = await Dialogue.open(Mx(server.sockets[0].getsockname()[1], store, None))
        await d.cmd("EHLO client.test")
        await d.cmd("MAIL FROM:<x@other.gov.vn>")
        assert (await d.cmd("RCPT TO:<trong@example.gov.vn>")).startswith("550 5.")
        assert (await d.cmd("RCPT TO:<kin@example.gov.vn>")).startswith("550 5.7.1")
        assert (await d.cmd("RCPT TO:<phong@example.gov.vn>")).startswith(S250_RCPT)
        assert (await d.cmd(f"RCPT TO:<{LOCAL}>")).startswith(S250_RCPT)  # also a member: one copy
        await d.cmd("DATA")
        assert (await d.cmd(b"Subject: to the group\r\n\r\nx\r\n.")).startswith(S250)
        await d.close()
    finally:
        server.close()
    (stored,) = store.delivered
    assert sorted(stored.account_ids) == [an.id, binh.id]  # not the group's own mailbox
