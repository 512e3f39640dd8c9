"""RFC 3030 CHUNKING and BINARYMIME: BDAT on receive (same size, quota and durability path as
DATA, the session kept in step whatever the reply) and BDAT on send when the next hop offers it.
Real sockets: the served server and a raw client; a recording remote for the send side."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.conftest import wait_until
from tests.outbound_helpers import SENDER, eventually, make_store, message, port_of, settings_for, start_service
from tests.test_smtp_e2e import inbox

PASSWORD = "Mat-khau-2026!"
S250, S354, S501, S503, S552, S221 = "250", "354", "501", "503", "552", "221"


class Wire:
    """A raw SMTP client: BDAT octets must go out exactly as written."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=30)
        self.buf = b""
        assert self.reply().startswith("220")

    def reply(self) -> str:
        """One whole reply (all its lines), or "" when the server closed the connection."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    return ""
                self.buf += data
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode())
            if line[3:4] != b"-":
                return "\n".join(lines)

    def cmd(self, line: str | bytes) -> str:
        self.sock.sendall((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def send(self, raw: bytes) -> None:
        self.sock.sendall(raw)

    def bdat(self, octets: bytes, last: bool = False) -> str:
        self.sock.sendall(f"BDAT {len(octets)}{' LAST' if last else ''}\r\n".encode() + octets)
        return self.reply()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def rcpt(server):
    address = f"chunk@{server.domain}"
    server.add_account(address, PASSWORD, name="Lê Văn Chunk")
    return address


def test_ehlo_offers_chunking_and_binarymime(server):
    w = Wire(server.host, server.port("smtp"))
    ehlo = w.cmd("EHLO client.test")
    assert "250-CHUNKING" in ehlo and "BINARYMIME" in ehlo
    w.close()


def test_message_in_pipelined_chunks_is_stored_byte_for_byte(server, rcpt):
    body = ("From: <a@x.test>\r\nTo: <%s>\r\nSubject: chunks\r\nMessage-ID: <chunk-1@x>\r\n\r\n" % rcpt).encode()
    body += "Dòng một.\r\n.dòng bắt đầu bằng dấu chấm (không nhồi)\r\n".encode() * 50
    parts = [body[:100], body[100:101], body[101:]]
    w = Wire(server.host, server.port("smtp"))
    w.cmd("EHLO client.test")
    # pipelined: MAIL, RCPT and every chunk in one write, then the replies in order
    raw = f"MAIL FROM:<a@x.test> SIZE={len(body)}\r\nRCPT TO:<{rcpt}>\r\n".encode()
    for n, part in enumerate(parts):
        raw += f"BDAT {len(part)}{' LAST' if n == len(parts) - 1 else ''}\r\n".encode() + part
    w.send(raw)
    replies = [w.reply() for _ in range(2 + len(parts))]
    assert all(r.startswith(S250) for r in replies), replies
    assert "100 octets received" in replies[2] and "101 in all" in replies[3]
    assert w.cmd("NOOP").startswith(S250)
    w.close()
    stored = wait_until(lambda: [m for m in inbox(server, rcpt) if b"<chunk-1@x>" in m])[0]
    assert stored.endswith(body)  # our trace headers in front, the message as sent (no unstuffing)


def test_bdat_out_of_sequence_is_refused_and_its_octets_skipped(server, rcpt):
    w = Wire(server.host, server.port("smtp"))
    w.cmd("EHLO client.test")
    assert w.bdat(b"MAIL FROM", last=True).startswith(S503)  # the 9 octets are not a command
    assert w.cmd("MAIL FROM:<a@x.test>").startswith(S250)
    assert w.bdat(b"RSET").startswith(S503)  # no RCPT yet
    assert w.cmd(f"RCPT TO:<{rcpt}>").startswith(S250)
    assert w.bdat(b"ab\n").startswith(S250)
    assert w.cmd("DATA").startswith(S503)  # no DATA once BDAT began
    assert w.cmd("RSET").startswith(S250)  # the chunks so far are dropped
    assert w.cmd("MAIL FROM:<a@x.test> BODY=BINARYMIME").startswith(S250)
    assert w.cmd(f"RCPT TO:<{rcpt}>").startswith(S250)
    assert w.cmd("DATA").startswith(S503)  # BINARYMIME needs BDAT
    w.close()


def test_binarymime_keeps_the_bytes_as_sent(server, rcpt):
    body = ("From: <a@x.test>\r\nTo: <%s>\r\nMessage-ID: <binary-1@x>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" % rcpt).encode()
    body += bytes(range(256)) + b"\nbare LF kept\r\n"
    w = Wire(server.host, server.port("smtp"))
    w.cmd("EHLO client.test")
    assert w.cmd("MAIL FROM:<a@x.test> BODY=BINARYMIME").startswith(S250)
    assert w.cmd(f"RCPT TO:<{rcpt}>").startswith(S250)
    assert w.bdat(body, last=True).startswith(S250)
    w.close()
    stored = wait_until(lambda: [m for m in inbox(server, rcpt) if b"<binary-1@x>" in m])[0]
    assert stored.endswith(body)


def test_bad_bdat_size_ends_the_session(server):
    w = Wire(server.host, server.port("smtp"))
    w.cmd("EHLO client.test")
    assert w.cmd("BDAT many").startswith(S501)
    assert w.reply() == ""  # closed: the stream cannot be trusted to be in step
    w.close()


def test_message_over_the_size_limit_is_refused_after_the_last_chunk(make_server):
    srv = make_server({"limits": {"max_message_size": 4096}})
    address = f"small@{srv.domain}"
    srv.add_account(address, PASSWORD)
    w = Wire(srv.host, srv.port("smtp"))
    w.cmd("EHLO client.test")
    w.cmd("MAIL FROM:<a@x.test>")
    w.cmd(f"RCPT TO:<{address}>")
    chunk = b"X-Pad: " + b"x" * 3000 + b"\r\n"
    assert w.bdat(chunk).startswith(S250)
    assert w.bdat(chunk, last=True).startswith(S552)
    assert w.cmd("NOOP").startswith(S250)  # still in step
    w.close()
    assert inbox(srv, address) == []


# -- send side ----------------------------------------------------------------------------------------
class ChunkingRemote(asyncio.Protocol):
    """A minimal receiving server that offers CHUNKING and records what it got."""

    def __init__(self, log: list) -> None:
        self.log, self.buf, self.need = log, b"", 0

    def connection_made(self, transport) -> None:
        self.t = transport
        transport.write(b"220 remote.test ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need:
                if len(self.buf) < self.need:
                    return
                chunk, self.buf, self.need = self.buf[: self.need], self.buf[self.need :], 0
                self.log.append(("chunk", chunk))
                self.t.write(b"250 2.0.0 got it\r\n")
                continue
            if b"\r\n" not in self.buf:
                return
            line, self.buf = self.buf.split(b"\r\n", 1)
            verb = line.split(b" ")[0].upper()
            self.log.append(("cmd", line.decode()))
            if verb == b"EHLO":
                self.t.write(b"250-remote.test\r\n250-8BITMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n")
            elif verb == b"BDAT":
                self.need = int(line.split()[1])
            elif verb == b"QUIT":
                self.t.write(b"221 bye\r\n")
                self.t.close()
            elif verb == b"DATA":
                self.t.write(b"502 5.5.1 use BDAT\r\n")
            else:
                self.t.write(b"250 2.0.0 ok\r\n")


@pytest.fixture
def store(store_url, tmp_path):
    s = make_store(store_url, tmp_path / "blobs")
    yield s
    s.close()


async def test_a_hop_offering_chunking_gets_the_message_with_bdat(store, tmp_path):
    log: list = []
    remote = await asyncio.get_running_loop().create_server(lambda: ChunkingRemote(log), "127.0.0.1", 0)
    settings = settings_for(tmp_path, {"other.gov.vn": f"127.0.0.1:{port_of(remote)}"})
    service = await start_service(settings, store)
    original = message(body=".dòng bắt đầu bằng dấu chấm\r\n")
    try:
        await service.enqueue(store.messages.put_blob(original), SENDER, ["bob@other.gov.vn"])
        await eventually(lambda: any(kind == "chunk" for kind, _ in log))
        await eventually(lambda: not store.queue.list())
    finally:
        await service.stop()
        remote.close()
    commands = [v for k, v in log if k == "cmd"]
    assert any(c.startswith("BDAT ") and c.endswith(" LAST") for c in commands) and "DATA" not in commands
    (chunk,) = [v for k, v in log if k == "chunk"]
    assert chunk.endswith(original.split(b"\r\n", 1)[1])  # no Return-Path, no dot-stuffing


def test_attachment_quota_is_checked_for_bdat_as_for_data(make_server):
    import base64

    srv = make_server({"quota": {"thresholds": [], "classes": {"small": {"attachment": "1MB"}}}})
    address = f"nho@{srv.domain}"
    srv.add_account(address, PASSWORD)
    store = srv.open_store()
    try:
        store.usage.set_class(store.accounts.get_account(address).id, "small")
    finally:
        store.close()
    attachment = base64.encodebytes(b"p" * (1024 * 1024 + 1)).replace(b"\n", b"\r\n")
    body = (f"From: <a@x.test>\r\nTo: <{address}>\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nxin chào\r\n'
            '--b\r\nContent-Type: application/pdf; name="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n').encode()
    body += attachment + b"--b--\r\n"
    w = Wire(srv.host, srv.port("smtp"))
    w.cmd("EHLO client.test")
    w.cmd("MAIL FROM:<a@x.test>")
    assert w.cmd(f"RCPT TO:<{address}>").startswith(S250)
    half = len(body) // 2
    assert w.bdat(body[:half]).startswith(S250)
    reply = w.bdat(body[half:], last=True)
    assert reply.startswith(S552) and "5.3.4" in reply  # the attachment limit (R-QUOTA-1), as with DATA
    w.close()
    assert inbox(srv, address) == []
