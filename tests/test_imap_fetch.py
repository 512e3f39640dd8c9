"""FETCH over whole folders on the real server: the renderings kept by the first FETCH answer
later ones byte for byte as a fresh rendering would, mixed items and sections stay exact, and
the reply forms of RFC 3501 / RFC 7162 hold (UID in UID FETCH, MODSEQ, partial origins, literals).

Also pins the renderer's output to RENDER_VERSION (imap/fetchrender.py): renderings kept in the
store by one version must never be served by a server whose renderer prints something else.
"""

from __future__ import annotations

import hashlib
import re
import socket
import time
from pathlib import Path

import pytest

from imap.bodystructure import render_body
from imap.envelope import render_envelope
from imap.fetchrender import KEEP_AT_LEAST, RENDER_VERSION
from storage.mime import parse as mime_parse
from storage.mime.crlf import to_crlf
from tests.conftest import BACKENDS, Server
from tests.test_imap_e2e import deliver

PASSWORD = "Fetch-pass-2024"
CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.eml"))
#: sha256 of the corpus rendered as ENVELOPE, BODY and BODYSTRUCTURE, by RENDER_VERSION.
RENDERED_DIGEST = {1: "19b2456743556f2d52f57c15e2ac89e32656d6f4b425521dad56821f4405166d"}


def test_renderer_output_is_pinned_to_its_version():
    """If this fails you changed what ENVELOPE/BODY/BODYSTRUCTURE print: bump RENDER_VERSION in
    imap/fetchrender.py (kept renderings of the old version are then ignored) and pin the new digest."""
    h = hashlib.sha256()
    for path in CORPUS:
        meta = mime_parse(path.read_bytes())
        h.update(render_envelope(meta["envelope"]) + render_body(meta["structure"], False) + render_body(meta["structure"], True))
    assert RENDERED_DIGEST.get(RENDER_VERSION) == h.hexdigest()


class Client:
    """Reads whole responses, literals included (they are skipped by length, never scanned)."""

    def __init__(self, server, address: str) -> None:
        self.sock = socket.create_connection((server.host, server.port("imap")), timeout=20)
        self.buf = b""
        self.n = 0
        self._until(b"\r\n")
        self.ok(b'LOGIN "%s" "%s"' % (address.encode(), PASSWORD.encode()))

    def _until(self, marker: bytes) -> None:
        while marker not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def append_all(self, messages: list[bytes]) -> None:
        """APPEND each message to INBOX with a LITERAL+ literal, in order."""
        for raw in messages:
            self.sock.sendall(b"a APPEND INBOX {%d+}\r\n" % len(raw) + raw + b"\r\n")
            self._until(b"\r\n")
            line, self.buf = self.buf.split(b"\r\n", 1)
            assert line.startswith(b"a OK"), line

    def run(self, command: bytes) -> tuple[list[bytes], bytes]:
        """(untagged responses, each with its literals inline; tagged status)."""
        self.n += 1
        tag = b"f%d" % self.n
        self.sock.sendall(tag + b" " + command + b"\r\n")
        responses = []
        while True:
            self._until(b"\r\n")
            line, self.buf = self.buf.split(b"\r\n", 1)
            whole = line
            while (m := re.search(rb"\{(\d+)\}$", line)) is not None:
                whole += b"\r\n" + self._take(int(m.group(1)))
                self._until(b"\r\n")
                line, self.buf = self.buf.split(b"\r\n", 1)
                whole += line
            if whole.startswith(tag + b" "):
                return responses, whole[len(tag) + 1:]
            responses.append(whole)

    def ok(self, command: bytes) -> list[bytes]:
        responses, status = self.run(command)
        assert status.startswith(b"OK"), (command, responses[-3:], status)
        return responses

    def close(self) -> None:
        self.sock.close()


def bulky(i: int) -> bytes:
    body = ("Dòng %d của tệp đính kèm lớn.\r\n" % i) * 30000
    return (
        "From: Văn thư <vanthu@example.gov.vn>\r\nTo: a@example.gov.vn\r\nSubject: Thư lớn\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n--zz\r\n'
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body + "--zz--\r\n"
    ).encode()


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    """Renders only when a FETCH asks (never ahead): the tests below tell renderings kept by a
    FETCH from fresh ones. Rendering ahead has its own test, on its own server."""
    srv = Server(tmp_path_factory.mktemp(f"fetch-{request.param}"), request.param, {"limits": {"imap_prerender_quiet": 0}})
    try:
        srv.start()
        yield srv
    finally:
        srv.destroy()


@pytest.fixture(scope="module")
def folder(server):
    """An account whose INBOX holds the Vietnamese corpus plus one large message, appended in order."""
    address = f"fetch@{server.domain}"
    server.add_account(address, PASSWORD, name="Lê Văn Tìm")
    messages = [p.read_bytes() for p in CORPUS] + [bulky(1)]
    assert len(messages) >= KEEP_AT_LEAST  # so a whole-folder FETCH keeps its renderings
    c = Client(server, address)
    c.append_all(messages)
    c.close()
    # What is stored and served: bare LF line ends made CRLF (RFC 3501 §4.3).
    return address, [to_crlf(m) for m in messages]


def _by_msn(responses: list[bytes]) -> dict[int, bytes]:
    return {int(r.split(b" ", 2)[1]): r for r in responses}


def kept_renderings(server) -> int:
    store = server.open_store()
    try:
        with store.core.reading() as conn:
            return conn.exec_driver_sql("SELECT count(*) FROM fetch_cache WHERE envelope IS NOT NULL").scalar()
    finally:
        store.close()


def test_kept_renderings_answer_exactly_as_fresh_ones(server, folder):
    address, messages = folder
    c = Client(server, address)
    c.ok(b"EXAMINE INBOX")
    items = b"(ENVELOPE BODY BODYSTRUCTURE)"
    one_by_one = {}
    for msn in range(1, len(messages) + 1):  # below KEEP_AT_LEAST each: rendered, not kept
        (resp,) = c.ok(b"FETCH %d %s" % (msn, items))
        one_by_one[msn] = resp
    assert kept_renderings(server) == 0
    cold = _by_msn(c.ok(b"FETCH 1:* " + items))
    deadline = time.monotonic() + 10  # kept in the background, after the answer
    while kept_renderings(server) < len(messages) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kept_renderings(server) == len(messages)
    warm = _by_msn(c.ok(b"FETCH 1:* " + items))
    assert cold == one_by_one == warm
    assert set(warm) == set(range(1, len(messages) + 1))
    # Reply forms: 8-bit text as literals, multipart structure, nested message envelope.
    assert any(b"ENVELOPE (" in r and b"}\r\n" in r for r in warm.values())
    assert any(b'"MESSAGE" "RFC822"' in r for r in warm.values())
    c.close()


def test_uid_fetch_always_names_the_uid_and_condstore_adds_modseq(server, folder):
    address, messages = folder
    c = Client(server, address)
    c.ok(b"SELECT INBOX")
    flags = c.ok(b"UID FETCH 1:* (FLAGS)")
    assert len(flags) == len(messages)
    assert all(re.fullmatch(rb"\* (\d+) FETCH \(UID \1 FLAGS \([^)]*\)\)", r) for r in flags)
    modseq = max(int(re.search(rb"MODSEQ \((\d+)\)", r).group(1)) for r in c.ok(b"FETCH 1:* (MODSEQ)"))
    c.ok(b"STORE 3 +FLAGS.SILENT (\\Flagged)")
    changed = c.ok(b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % modseq)
    assert len(changed) == 1
    assert re.fullmatch(rb"\* 3 FETCH \(UID 3 FLAGS \(\\Flagged( \\Recent)?\) MODSEQ \((\d+)\)\)", changed[0])
    c.close()


def test_mixed_items_sections_and_partials_are_byte_exact(server, folder):
    address, messages = folder
    c = Client(server, address)
    c.ok(b"EXAMINE INBOX")
    # Thunderbird's header fetch: simple items and a HEADER.FIELDS section on every message.
    resp = _by_msn(c.ok(b"FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])"))
    for msn, raw in enumerate(messages, 1):
        assert b"RFC822.SIZE %d " % len(raw) in resp[msn]
        literal = resp[msn].split(b"BODY[HEADER.FIELDS (SUBJECT FROM)] {", 1)[1]
        size, rest = literal.split(b"}\r\n", 1)
        fields = rest[: int(size)]
        assert fields.endswith(b"\r\n\r\n") or fields == b"\r\n" or fields.endswith(b"\n\r\n")
        for line in fields.splitlines():
            assert line == b"" or line.lower().startswith((b"subject:", b"from:", b" ", b"\t"))
            assert line in raw
    # A sparse set, whole bodies and a partial; the large one is streamed in chunks.
    last = len(messages)
    resp = _by_msn(c.ok(b"FETCH 2,7,%d (BODY.PEEK[] BODY.PEEK[]<100.50>)" % last))
    for msn in (2, 7, last):
        raw = messages[msn - 1]
        assert b"BODY[] {%d}\r\n" % len(raw) + raw in resp[msn]
        assert resp[msn].endswith(b"BODY[]<100> {50}\r\n" + raw[100:150] + b")")
    # A partial past the end is empty; a part that does not exist is an empty string.
    (resp,) = c.ok(b"FETCH 2 (BODY.PEEK[]<99999999.10> BODY.PEEK[9])")
    assert resp.endswith(b'BODY[]<99999999> {0}\r\n BODY[9] "")')
    (resp,) = c.ok(b"FETCH %d (BODY.PEEK[1]<10.300000>)" % last)
    body_start = messages[-1].index(b"8bit\r\n\r\n") + 8
    assert resp.endswith(b"BODY[1]<10> {300000}\r\n" + messages[-1][body_start + 10 : body_start + 10 + 300000] + b")")
    c.close()


def test_fetch_without_peek_sets_seen_and_reports_flags(server, folder):
    address, messages = folder
    c = Client(server, address)
    c.ok(b"SELECT INBOX")
    (resp,) = c.ok(b"UID FETCH 5 (BODY[HEADER.FIELDS (SUBJECT)])")
    assert resp.startswith(b"* 5 FETCH (UID 5 BODY[HEADER.FIELDS (SUBJECT)] {")
    assert re.search(rb"FLAGS \([^)]*\\Seen[^)]*\)\)$", resp)
    c.close()


def test_many_bodies_to_a_slow_reader_arrive_whole_and_in_order(server):
    """Bodies read a group at a time and handed to the event loop without waiting (imap/fetch.py
    MAX_AHEAD): several megabytes more than the socket holds, a reader that starts late and
    reads in small pieces, and a FETCH on the same connection right after."""
    address = f"slow-bodies@{server.domain}"
    server.add_account(address, PASSWORD, name="Đọc chậm")
    messages = [
        (f"Subject: thư {i}\r\nMessage-ID: <{i}@slow>\r\n\r\n".encode() + (b"%03d " % i) * (25_000 + 997 * i))
        + b"\r\n"
        for i in range(40)
    ]  # 100-140 KB each, all under STREAM_ABOVE: read from the store in groups, not streamed
    c = Client(server, address)
    c.append_all(messages)
    c.ok(b"EXAMINE INBOX")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    c.n += 1
    c.sock.sendall(b"f%d FETCH 1:* (BODY.PEEK[] RFC822.SIZE)\r\n" % c.n)
    time.sleep(1)  # the server fills the socket and waits
    got = bytearray(c.buf)
    while not got.endswith(b"f%d OK FETCH completed\r\n" % c.n):
        chunk = c.sock.recv(4096)
        assert chunk, bytes(got[-200:])
        got += chunk
    expected = b"".join(
        b"* %d FETCH (BODY[] {%d}\r\n%s RFC822.SIZE %d)\r\n" % (n, len(raw), raw, len(raw)) for n, raw in enumerate(messages, 1)
    )
    assert bytes(got) == expected + b"f%d OK FETCH completed\r\n" % c.n
    c.buf = b""
    (resp,) = c.ok(b"FETCH 40 (BODY.PEEK[]<7.20>)")
    assert resp == b"* 40 FETCH (BODY[]<7> {20}\r\n" + messages[-1][7:27] + b")"
    c.close()


def test_delivered_mail_is_rendered_ahead_once_the_store_is_quiet(make_server):
    """imap/prerender.py: after delivery and a quiet spell, ENVELOPE/BODY/BODYSTRUCTURE are kept
    without any FETCH, exactly as a FETCH renders them; mail delivered later is rendered too."""
    srv = make_server({"limits": {"imap_prerender_quiet": 0.3}})
    address = f"ahead@{srv.domain}"
    srv.add_account(address, PASSWORD, name="Trước")
    sent = [deliver(srv, address, subject=f"Công văn số {i}", body=f"Nội dung {i}\r\n") for i in range(3)]

    def kept_all(n: int) -> bool:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            store = srv.open_store()
            try:
                with store.core.reading() as conn:
                    done = conn.exec_driver_sql(
                        "SELECT count(*) FROM fetch_cache WHERE envelope IS NOT NULL AND body IS NOT NULL"
                        " AND bodystructure IS NOT NULL").scalar()
            finally:
                store.close()
            if done >= n:
                return done == n
            time.sleep(0.1)
        return False

    assert kept_all(3)
    sent.append(deliver(srv, address, subject="Thư đến sau"))
    assert kept_all(4)
    c = Client(srv, address)
    c.ok(b"EXAMINE INBOX")
    resp = _by_msn(c.ok(b"FETCH 1:* (ENVELOPE BODY BODYSTRUCTURE)"))
    for msn, raw in enumerate(sent, 1):  # a delivered copy starts with our trace header: render what was stored
        (stored,) = c.ok(b"FETCH %d (BODY.PEEK[])" % msn)
        stored = stored.split(b"}\r\n", 1)[1][:-1]
        assert stored.endswith(raw)
        meta = mime_parse(stored)
        assert resp[msn] == b"* %d FETCH (ENVELOPE %s BODY %s BODYSTRUCTURE %s)" % (
            msn, render_envelope(meta["envelope"]), render_body(meta["structure"], False), render_body(meta["structure"], True))
    c.close()


def _literal(response: bytes, label: bytes) -> bytes:
    size, rest = response.split(label + b" {", 1)[1].split(b"}\r\n", 1)
    return rest[: int(size)]


def test_header_sections_read_without_bodies_are_those_read_with_them(server, folder):
    """A FETCH of header sections only reads each message up to its body; the same sections
    fetched beside a body item (which reads whole messages) must come out byte for byte."""
    address, messages = folder
    c = Client(server, address)
    c.ok(b"EXAMINE INBOX")
    heads = b"BODY.PEEK[HEADER] RFC822.HEADER BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[HEADER.FIELDS.NOT (RECEIVED)]"
    alone = _by_msn(c.ok(b"FETCH 1:* (%s)" % heads))
    beside = _by_msn(c.ok(b"FETCH 1:* (%s BODY.PEEK[TEXT]<0.1>)" % heads))
    labels = (b"BODY[HEADER]", b"RFC822.HEADER", b"BODY[HEADER.FIELDS (SUBJECT FROM)]", b"BODY[HEADER.FIELDS.NOT (RECEIVED)]")
    for msn, raw in enumerate(messages, 1):
        head = raw[: mime_parse(raw)["structure"]["body_start"]]
        assert _literal(alone[msn], b"BODY[HEADER]") == _literal(alone[msn], b"RFC822.HEADER") == head
        for label in labels:
            assert _literal(alone[msn], label) == _literal(beside[msn], label), (msn, label)
    c.close()
