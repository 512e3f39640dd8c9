"""Vietnamese folder names both ways: modified UTF-7 before, UTF-8 after ENABLE
UTF8=ACCEPT (RFC 6855), both naming one folder; UTF8 APPEND; SEARCH CHARSET UTF-8 literals."""

from __future__ import annotations

import unicodedata

import pytest

from imap import mutf7
from tests.test_imap_extensions import Session, append

PASSWORD = "Ext-pass-2024"
NAME = "Công văn đến"
MUTF7 = mutf7.encode(NAME)  # b"C&APQ-ng v&AQM-n &ARE-&Hr8-n"


def literal(text: str) -> bytes:
    raw = text.encode()
    return b"{%d+}\r\n" % len(raw) + raw


@pytest.fixture(scope="module")
def account(server):
    address = f"utf8@{server.domain}"
    server.add_account(address, PASSWORD, name="Lê Văn Đức")
    return address


def test_folder_names_in_modified_utf7_then_utf8_name_one_folder(server, account):
    s = Session(server, account)
    assert b"UTF8=ACCEPT" in b" ".join(s.ok("CAPABILITY"))
    s.ok(b'CREATE "' + MUTF7 + b'"')
    assert b'* LIST (\\HasNoChildren) "/" "' + MUTF7 + b'"' in s.ok('LIST "" "*"')
    append(s, '"' + MUTF7.decode() + '"', "first")
    assert s.ok("ENABLE UTF8=ACCEPT") == [b"* ENABLED UTF8=ACCEPT"]
    utf8 = b'"' + NAME.encode() + b'"'
    assert b'* LIST (\\HasNoChildren) "/" ' + utf8 in s.ok('LIST "" "*"')
    assert s.ok(b"STATUS " + utf8 + b" (MESSAGES)") == [b"* STATUS " + utf8 + b" (MESSAGES 1)"]
    # the modified UTF-7 form still names the same folder, answered in UTF-8
    assert s.ok(b'STATUS "' + MUTF7 + b'" (MESSAGES)') == [b"* STATUS " + utf8 + b" (MESSAGES 1)"]
    # decomposed (NFD) input is the same folder too
    nfd = unicodedata.normalize("NFD", NAME).encode()
    assert s.ok(b'STATUS "' + nfd + b'" (MESSAGES)') == [b"* STATUS " + utf8 + b" (MESSAGES 1)"]
    msg = "From: a@b.vn\r\nSubject: Tờ trình số 06\r\n\r\nnội dung\r\n".encode()
    _, status = s.run(b"APPEND " + utf8 + b" UTF8 (~{%d+}\r\n%s)" % (len(msg), msg))
    assert status.startswith(b"OK [APPENDUID"), status
    assert b"* 2 EXISTS" in s.ok(b"SELECT " + utf8)
    s.close()
    other = Session(server, account)  # a session without UTF8=ACCEPT sees modified UTF-7
    assert other.ok(b'STATUS "' + MUTF7 + b'" (MESSAGES)') == [b'* STATUS "' + MUTF7 + b'" (MESSAGES 2)']
    other.close()


def test_ampersand_names_after_utf8_accept(server, account):
    s = Session(server, account)
    s.ok("ENABLE UTF8=ACCEPT")
    s.ok('CREATE "R&D"')
    assert b'* LIST (\\HasNoChildren) "/" "R&D"' in s.ok('LIST "" "R*"')
    s.close()
    other = Session(server, account)
    assert other.ok('LIST "" "R*"') == [b'* LIST (\\HasNoChildren) "/" "R&-D"']
    other.close()


def test_search_charset_utf8_literals_fold_tones(server, account):
    s = Session(server, account)
    append(s, "INBOX", "Công văn số 12 về Đề án")
    append(s, "INBOX", "Báo cáo tuần")
    s.ok("SELECT INBOX")
    for text in ("cong van", "Công văn", "CÔNG VĂN", "de an"):
        lines = s.ok(b"UID SEARCH CHARSET UTF-8 SUBJECT " + literal(text))
        assert lines == [b"* SEARCH 1"], (text, lines)
    s.ok("ENABLE UTF8=ACCEPT")
    assert s.ok('UID SEARCH SUBJECT "' .encode() + "báo cáo".encode() + b'"') == [b"* SEARCH 2"]
    s.close()


def test_raw_utf8_names_are_refused_until_utf8_accept(server, account):
    """RFC 3501 §9 (astring is 7-bit) and RFC 6855 §3: a raw 8-bit name names no folder until
    the client enabled UTF8=ACCEPT; NO, as Dovecot answers."""
    s = Session(server, account)
    raw = '"Tiếng Việt"'.encode()
    for command in (b"CREATE " + raw, b"SELECT " + raw, b"STATUS " + raw + b" (MESSAGES)", b"DELETE " + raw):
        lines, status = s.run(command)
        assert status.startswith(b"NO "), (command, status)
    assert s.ok('LIST "" "Ti*"') == []
    s.ok("ENABLE UTF8=ACCEPT")
    s.ok(b"CREATE " + raw)
    assert s.ok('LIST "" "Ti*"') == [b'* LIST (\\HasNoChildren) "/" ' + raw]
    s.close()
