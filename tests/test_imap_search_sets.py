"""SEARCH and sequence sets, search dates, HEADER with an empty string, end to end over imaplib,
IMAPClient and raw sockets against the real server."""

from __future__ import annotations

import imaplib

import pytest
from imapclient import IMAPClient

from tests.test_imap_e2e import PASSWORD, Raw


@pytest.fixture(scope="module")
def users(server):
    names = {}
    for short in ("sets1", "sets2", "sets3", "sets4"):
        address = f"{short}@{server.domain}"
        server.add_account(address, PASSWORD, name="Trần Thị Bình")
        names[short] = address
    return names


def _login(server, address) -> imaplib.IMAP4:
    m = imaplib.IMAP4(server.host, server.port("imap"), timeout=10)
    m._encoding = "utf-8"
    m.login(address, PASSWORD)
    return m


def test_search_with_sequence_numbers_beyond_the_mailbox_matches_what_exists(server, users):
    m = _login(server, users["sets1"])
    for i in range(10):
        m.append("INBOX", None, None, b"Subject: m%d\r\n\r\nbody\r\n" % i)
    m.select("INBOX")
    assert m.search(None, "1000") == ("OK", [b""])
    assert m.search(None, "5:100") == ("OK", [b"5 6 7 8 9 10"])
    assert m.search(None, "1,3,90") == ("OK", [b"1 3"])
    typ, data = m.uid("SEARCH", "ALL")
    uids = data[0].split()
    assert m.search(None, "UID", "100000:*") == ("OK", [b"10"])
    assert m.uid("SEARCH", "UID", "100000:*") == ("OK", [uids[-1]])
    typ, data = m._untagged_response(*m._simple_command("SEARCH", "RETURN", "(COUNT)", "UID", "100000:*"), "ESEARCH")
    assert typ == "OK" and data[0].endswith(b"COUNT 1")
    # FETCH and STORE still refuse a number beyond the mailbox
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        m.fetch("11", "UID")
    m.logout()
    with IMAPClient(server.host, port=server.port("imap"), ssl=False, timeout=10) as c:
        c.login(users["sets1"], PASSWORD)
        c.select_folder("INBOX")
        assert c.search(["NOT", "DELETED", "SUBJECT", "m", "SMALLER", "5"]) == []
        assert c.search(["NOT", "DELETED", "50:60"]) == []


def test_message_numbers_in_an_empty_mailbox_are_bad_but_search_is_ok(server, users):
    raw = Raw(server)
    raw.login(users["sets2"])
    assert raw.cmd(b"e1 SELECT INBOX", b"e1").find(b"e1 OK") >= 0
    assert raw.cmd(b"e2 FETCH 1:* UID", b"e2").startswith(b"e2 BAD")
    assert raw.cmd(b"e3 COPY 1 Trash", b"e3").startswith(b"e3 BAD")
    assert raw.cmd(b"e4 MOVE 1 Trash", b"e4").startswith(b"e4 BAD")
    assert raw.cmd(b"e5 STORE 1:* +FLAGS (\\Seen)", b"e5").startswith(b"e5 BAD")
    assert raw.cmd(b"e6 UID FETCH 1:* UID", b"e6").startswith(b"e6 OK")
    assert raw.cmd(b"e7 SEARCH 1:*", b"e7").startswith(b"* SEARCH\r\ne7 OK")
    assert raw.cmd(b"e8 UID SEARCH UID 5:*", b"e8").startswith(b"* SEARCH\r\ne8 OK")
    raw.close()


def test_header_with_an_empty_string_matches_the_messages_that_have_the_field(server, users):
    m = _login(server, users["sets3"])
    m.append("INBOX", None, None, b"From: a@example.vn\r\nSubject: co\r\nCc: c@example.vn\r\n\r\nbody\r\n")
    m.append("INBOX", None, None, b"To: b@example.vn\r\nX-Note: n\r\n\r\nbody\r\n")
    m.append("INBOX", None, None, b"Subject:\r\nBcc: d@example.vn\r\n\r\nbody\r\n")
    m.select("INBOX")
    assert m.search(None, "HEADER", "Subject", '""') == ("OK", [b"1 3"])
    assert m.search(None, "HEADER", "From", '""') == ("OK", [b"1"])
    assert m.search(None, "HEADER", "To", '""') == ("OK", [b"2"])
    assert m.search(None, "HEADER", "Cc", '""') == ("OK", [b"1"])
    assert m.search(None, "HEADER", "Bcc", '""') == ("OK", [b"3"])
    assert m.search(None, "HEADER", "X-Note", '""') == ("OK", [b"2"])
    assert m.search(None, "NOT", "HEADER", "Subject", '""') == ("OK", [b"2"])
    assert m.search(None, "HEADER", "Subject", "co") == ("OK", [b"1"])
    m.logout()


def test_grammar_edges_end_to_end(server, users):
    raw = Raw(server)
    raw.login(users["sets4"])
    assert b"g1 OK" in raw.cmd(b"g1 CREATE a[b", b"g1")
    assert b"g2 OK" in raw.cmd(b'g2 CREATE "x[1]"', b"g2")
    assert b'"/" "a[b"\r\n' in raw.cmd(b'g3 LIST "" a[*', b"g3")
    assert b"g4 OK" in raw.cmd(b"g4 SELECT a[b", b"g4")
    assert raw.cmd(b"g5  NOOP", b"g5").startswith(b"g5 BAD")
    assert raw.cmd(b'g6 SEARCH SUBJECT "a\x00b"', b"g6").startswith(b"g6 BAD")
    assert raw.cmd(b"g7 NOOP", b"g7").startswith(b"g7 OK")
    raw.close()
