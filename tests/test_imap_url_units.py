"""Unit tests of the pure parts of BINARY and CATENATE: CTE decoding (imap/binary.py) and IMAP
URL parsing (imap/imapurl.py, RFC 5092)."""

from __future__ import annotations

import base64

import pytest

from imap import binary, imapurl


def test_decode_base64_is_lenient_and_sizes_agree():
    data = bytes(range(256))
    enc = base64.encodebytes(data).replace(b"\n", b"\r\n")
    assert binary.decode(enc, "base64") == data
    assert binary.decoded_size(enc, "base64") == 256
    assert binary.decode(b"YWJj\r\nZA", "base64") == b"abcd"  # unpadded last group
    assert binary.decode(b"YW!Jj*ZA==", "base64") == b"abcd"  # junk skipped
    assert binary.decoded_size(b"YWJjZA", "base64") == 4


def test_decode_quoted_printable_soft_breaks():
    assert binary.decode(b"C=C3=B4ng r=\r\n=E1=BA=A5t", "quoted-printable") == "Công rất".encode()


def test_locate_refuses_unknown_encodings_and_passes_identity_ranges():
    leaf = {"type": "text", "subtype": "plain", "encoding": "x-uuencode", "body_start": 10, "body_end": 20}
    with pytest.raises(binary.UnknownCTE):
        binary.locate(leaf, 20, (1,))
    leaf["encoding"] = "8bit"
    where = binary.locate(leaf, 20, (1,))
    assert (where.start, where.end, where.encoding) == (10, 20, None)
    assert binary.locate(leaf, 20, ()).end == 20


def test_needs_literal8():
    assert binary.needs_literal8(b"abc", "base64")
    assert binary.needs_literal8(b"a\0b", None)
    assert binary.needs_literal8(b"abc", None, "binary")
    assert not binary.needs_literal8(b"abc", None, "7bit")


def test_parse_urls():
    u = imapurl.parse("imap://an%40example.gov.vn@mail.example.gov.vn/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.2/;PARTIAL=0.1024")
    assert (u.user, u.host, u.mailbox, u.uidvalidity, u.uid, u.section, u.partial) == (
        "an@example.gov.vn", "mail.example.gov.vn", b"INBOX", 385759045, 20, b"1.2", (0, 1024))
    u = imapurl.parse("/C%C3%B4ng%20v%C4%83n/;UID=3/;SECTION=HEADER.FIELDS%20(SUBJECT)")
    assert u.mailbox == "Công văn".encode() and u.section == b"HEADER.FIELDS (SUBJECT)" and u.host is None
    u = imapurl.parse("/Projects/2024;UIDVALIDITY=9/;UID=5")
    assert (u.mailbox, u.uidvalidity, u.uid) == (b"Projects/2024", 9, 5)
    u = imapurl.parse(";UID=7")
    assert u.mailbox is None and u.uid == 7


@pytest.mark.parametrize("url", [
    "", "INBOX", "/INBOX", "/INBOX/", "/INBOX/;UID=0", "/INBOX/;UID=x", "imap:/INBOX/;UID=1",
    "/INBOX/;UID=1/;URLAUTH=anonymous", "/INBOX/;UID=1/;SECTION=1/;SECTION=2", "imap://u;AUTH=*@host/INBOX/;UID=1",
    "/INBOX/;UID=1]", "/INBOX/;UID=99999999999",
])
def test_bad_urls(url):
    with pytest.raises(imapurl.BadUrl):
        imapurl.parse(url)
