"""BINARY (RFC 3516), MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) over real sockets."""

from __future__ import annotations

import base64
import re
import socket

import pytest

PASSWORD = "Bin-pass-2024x"
_LITERAL = re.compile(rb"(~?)\{(\d+)\}$")


class Raw:
    """A client that reads literals (and literal8) inside responses, which the suite's line
    client cannot."""

    def __init__(self, server, address: str) -> None:
        self.sock = socket.create_connection((server.host, server.port("imap")), timeout=20)
        self.buf = b""
        self.n = 0
        self._line()
        self.ok(f'LOGIN "{address}" "{PASSWORD}"')

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _response(self) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """One response line with its literals: (text with literals as "{n}"/"~{n}", [(kind, data)])."""
        text, literals = b"", []
        while True:
            line = self._line()
            text += line
            m = _LITERAL.search(line)
            if m is None:
                return text, literals
            size = int(m.group(2))
            while len(self.buf) < size:
                self._fill()
            literals.append((m.group(1), self.buf[:size]))
            self.buf = self.buf[size:]

    def run(self, command: bytes | str):
        self.n += 1
        tag = b"b%d" % self.n
        self.sock.sendall(tag + b" " + (command.encode() if isinstance(command, str) else command) + b"\r\n")
        out = []
        while True:
            text, literals = self._response()
            if text.startswith(tag + b" "):
                return out, text[len(tag) + 1:]
            out.append((text, literals))

    def ok(self, command):
        out, status = self.run(command)
        assert status.startswith(b"OK"), (command, out, status)
        return out

    def close(self) -> None:
        self.sock.close()


def lit(data: bytes, binary: bool = False) -> bytes:
    return (b"~" if binary else b"") + b"{%d+}\r\n" % len(data) + data


PDF = bytes(range(256)) * 4
MIXED = (
    b"From: a@example.gov.vn\r\nSubject: mixed\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"C=C3=B4ng v=C4=83n s=E1=BB=91 12 r=\r\n=E1=BA=A5t d=C3=A0i\r\n"
    b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(PDF).replace(b"\n", b"\r\n")
    + b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\nend\r\n"
    b"--b--\r\n"
)


@pytest.fixture(scope="module")
def account(server):
    address = f"binary@{server.domain}"
    server.add_account(address, PASSWORD, name="Binary Tester")
    return address


def test_fetch_binary_decodes_parts_and_sets_seen(server, account):
    c = Raw(server, account)
    c.ok("CREATE Bin1")
    c.ok(b"APPEND Bin1 " + lit(MIXED))
    c.ok("SELECT Bin1")
    assert b"BINARY" in c.ok("CAPABILITY")[0][0].split()
    (text, lits), = c.ok("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[2] BINARY.SIZE[1])")
    # the line end before a boundary belongs to the boundary (RFC 2046 §5.1.1)
    assert lits == [(b"~", "Công văn số 12 rất dài".encode())]
    assert b"BINARY.SIZE[2] 1024" in text and b"BINARY.SIZE[1] %d" % len("Công văn số 12 rất dài".encode()) in text
    (text, lits), = c.ok("FETCH 1 (BINARY.PEEK[2]<1000.100> FLAGS)")
    assert b"BINARY[2]<1000> ~{24}" in text and lits[0][1] == PDF[1000:] and b"\\Seen" not in text
    (text, lits), = c.ok("FETCH 1 (BINARY[2])")
    assert lits == [(b"~", PDF)] and b"\\Seen" in text  # BINARY without .PEEK sets \Seen (RFC 3516 §4.2)
    out, status = c.run("FETCH 1 (BINARY.PEEK[3])")
    assert status.startswith(b"NO [UNKNOWN-CTE]") and out == []
    for bad in ("BINARY[1.MIME]", "BINARY[HEADER]", "BINARY.SIZE[1]<0.5>"):
        assert c.run(f"FETCH 1 ({bad})")[1].startswith(b"BAD"), bad
    (text, lits), = c.ok("FETCH 1 (BINARY.PEEK[9] BINARY.SIZE[9])")
    assert b"BINARY.SIZE[9] 0" in text
    c.close()


def test_literal8_append_is_stored_as_written(server, account):
    c = Raw(server, account)
    c.ok("CREATE Bin2")
    msg = (b"From: a@example.gov.vn\r\nSubject: nul\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: binary\r\n\r\na\x00b\nc\x00\xff\r\n")
    status = c.ok(b"APPEND Bin2 " + lit(msg, binary=True))
    c.ok("SELECT Bin2")
    (text, lits), = c.ok("FETCH 1 (BODY.PEEK[] RFC822.SIZE)")
    assert lits == [(b"~", msg)] and b"RFC822.SIZE %d" % len(msg) in text  # a bare LF kept, NULs kept
    (text, lits), = c.ok("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
    assert lits == [(b"~", b"a\x00b\nc\x00\xff\r\n")] and b"BINARY.SIZE[1] 9" in text
    assert status == []
    c.close()


def test_large_base64_part_decodes_from_its_range(server, account):
    """A part above the streaming threshold: decoded whole and right, and an identity part of
    that size is streamed with its partial honoured."""
    c = Raw(server, account)
    c.ok("CREATE Bin3")
    blob = bytes(range(256)) * 2048  # 512 KiB
    text_part = b"line of text\r\n" * 30000  # ~420 KB, 7bit
    msg = (b"Subject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n"
           b"--z\r\nContent-Type: text/plain\r\n\r\n" + text_part
           + b"--z\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(blob).replace(b"\n", b"\r\n") + b"--z--\r\n")
    c.ok(b"APPEND Bin3 " + lit(msg))
    c.ok("SELECT Bin3")
    (text, lits), = c.ok("FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])")
    assert lits == [(b"~", blob)] and b"BINARY.SIZE[2] %d" % len(blob) in text
    (text, lits), = c.ok("FETCH 1 (BINARY.PEEK[1]<14.300000>)")
    assert lits == [(b"", text_part[14:300014])]
    c.close()


def test_multiappend_is_all_or_none(make_server):
    srv = make_server({"quota": {"mailbox": 5000}})
    address = f"multi@{srv.domain}"
    srv.add_account(address, PASSWORD, name="Multi")
    c = Raw(srv, address)
    one = b"Subject: one\r\n\r\n" + b"x" * 1500 + b"\r\n"
    two = b"Subject: two\r\n\r\n" + b"y" * 1500 + b"\r\n"
    _, status = c.run(b"APPEND INBOX (\\Seen) " + lit(one) + b" (\\Flagged) \" 1-Feb-2024 10:00:00 +0700\" " + lit(two))
    m = re.match(rb"OK \[APPENDUID (\d+) 1:2\]", status)
    assert m, status
    c.ok("SELECT INBOX")
    lines = [t for t, _ in c.ok("FETCH 1:* (FLAGS INTERNALDATE)")]
    assert b"\\Seen" in lines[0] and b"\\Flagged" in lines[1] and b"01-Feb-2024 03:00:00 +0000" in lines[1]
    # each would fit alone, together they do not: neither is stored (RFC 3502 §6.3.11)
    _, status = c.run(b"APPEND INBOX " + lit(one) + b" " + lit(two))
    assert status.startswith(b"NO [OVERQUOTA]"), status
    _, status = c.run(b"APPEND INBOX " + lit(b"Subject: x\r\n\r\nx\r\n") + b" (\\Bogus) " + lit(b"Subject: y\r\n\r\ny\r\n"))
    assert status.startswith(b"BAD")
    assert c.ok("STATUS INBOX (MESSAGES)")[0][0].endswith(b"(MESSAGES 2)")
    c.close()


def test_catenate_builds_a_message_from_text_and_urls(server, account):
    c = Raw(server, account)
    c.ok("CREATE Cat")
    c.ok("CREATE Cat2")
    c.ok(b"APPEND Cat " + lit(MIXED))
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", c.ok("STATUS Cat (UIDVALIDITY)")[0][0]).group(1))
    head = b"From: me@example.gov.vn\r\nSubject: fwd\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n"
    absolute = f"imap://{account.replace('@', '%40')}@mail.example.gov.vn/Cat;UIDVALIDITY={uidvalidity}/;UID=1/;SECTION=2"
    _, status = c.run(b"APPEND Cat2 (\\Draft) CATENATE (TEXT " + lit(head) + b' URL "/Cat/;UID=1/;SECTION=2.MIME" URL "'
                      + absolute.encode() + b'" TEXT ' + lit(b"\r\n--q--\r\n") + b")")
    assert re.match(rb"OK \[APPENDUID \d+ 1\]", status), status
    c.ok("SELECT Cat2")
    (text, lits), = c.ok("FETCH 1 (BINARY.PEEK[1] FLAGS)")
    assert lits == [(b"~", PDF)] and b"\\Draft" in text
    c.ok("SELECT Cat")  # a URL relative to the selected mailbox, and a partial
    _, status = c.run(b'APPEND Cat2 CATENATE (URL ";UID=1/;SECTION=HEADER" TEXT ' + lit(b"body\r\n") + b')'
                      b' CATENATE (URL ";UID=1/;PARTIAL=0.12")')
    assert re.match(rb"OK \[APPENDUID \d+ 2:3\]", status), status
    c.ok("SELECT Cat2")
    (_, lits), = c.ok("FETCH 3 BODY.PEEK[]")
    assert lits == [(b"", MIXED[:12])]
    for url in (f"/Cat;UIDVALIDITY={uidvalidity + 1}/;UID=1", "/Cat/;UID=9", "/Nope/;UID=1",
                "imap://elsewhere.example.com/Cat/;UID=1", f"imap://other%40{server.domain}@mail.example.gov.vn/Cat/;UID=1",
                "/Cat/;UID=1/;URLAUTH=anonymous", "/Cat/;UID=1/;SECTION=7"):
        _, status = c.run(b'APPEND Cat2 CATENATE (URL "' + url.encode() + b'")')
        assert status.startswith(b"NO [BADURL "), (url, status)
    assert c.ok("STATUS Cat2 (MESSAGES)")[0][0].endswith(b"(MESSAGES 3)")
    c.close()


def test_catenate_cannot_read_other_accounts_and_is_toobig_over_the_limit(make_server):
    srv = make_server({"limits": {"max_message_size": 3000}})
    for name in ("cat-a", "cat-b"):
        srv.add_account(f"{name}@{srv.domain}", PASSWORD, name=name)
    a = Raw(srv, f"cat-a@{srv.domain}")
    a.ok(b"APPEND INBOX " + lit(b"Subject: secret\r\n\r\n" + b"s" * 2000 + b"\r\n"))
    b = Raw(srv, f"cat-b@{srv.domain}")
    _, status = b.run(b'APPEND INBOX CATENATE (URL "imap://cat-a%40' + srv.domain.encode() + b'@mail.example.gov.vn/INBOX/;UID=1")')
    assert status.startswith(b"NO [BADURL"), status
    _, status = a.run(b'APPEND INBOX CATENATE (URL "/INBOX/;UID=1" URL "/INBOX/;UID=1")')
    assert status.startswith(b"NO [TOOBIG]"), status
    a.close()
    b.close()
