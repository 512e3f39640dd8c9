"""Keywords in the mailbox's FLAGS, case-insensitive keywords, \\Recent and STATUS syntax, end to
end over real sockets (RFC 3501 §2.3.2, §6.3.1, §6.3.10, §7.2.6, §9)."""

from __future__ import annotations

import re

import pytest

from tests.test_imap_e2e import PASSWORD, Raw, _noop_until

MSG = b"From: a@example.gov.vn\r\nTo: b@example.gov.vn\r\nSubject: t\r\n\r\nbody\r\n"


@pytest.fixture(scope="module")
def kw_users(server):
    names = {}
    for short in ("kw1", "kw2", "kw3", "kw4", "kw5"):
        address = f"{short}@{server.domain}"
        server.add_account(address, PASSWORD, name="Kw")
        names[short] = address
    return names


def _session(server, address) -> Raw:
    r = Raw(server)
    r.login(address)
    return r


def _append(r: Raw, box: bytes, flags: bytes = b"") -> None:
    r.send(b"ap APPEND %s (%s) {%d}\r\n" % (box, flags, len(MSG)))
    assert r.read_until(b"\r\n").startswith(b"+")
    r.send(MSG + b"\r\n")
    assert b"ap OK" in r._tagged(b"ap")


def _flags_line(reply: bytes) -> set[str]:
    m = re.search(rb"\* FLAGS \(([^)]*)\)", reply)
    assert m, reply
    return set(m.group(1).decode().split())


def _permanent(reply: bytes) -> set[str]:
    m = re.search(rb"\* OK \[PERMANENTFLAGS \(([^)]*)\)\]", reply)
    assert m, reply
    return set(m.group(1).decode().split())


SYSTEM = {"\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"}


def test_select_and_examine_list_the_keywords_in_use(server, kw_users):
    r = _session(server, kw_users["kw1"])
    _append(r, b"INBOX", b"$label1 Junk")
    _append(r, b"INBOX", b"\\Seen $Forwarded")
    reply = r.cmd(b"s1 SELECT INBOX", b"s1")
    assert _flags_line(reply) == SYSTEM | {"$label1", "Junk", "$Forwarded"}
    assert _permanent(reply) == SYSTEM | {"$label1", "Junk", "$Forwarded", "\\*"}
    reply = r.cmd(b"s2 EXAMINE INBOX", b"s2")
    assert _flags_line(reply) == SYSTEM | {"$label1", "Junk", "$Forwarded"}
    assert _permanent(reply) == set()
    r.close()


def test_a_new_keyword_sends_flags_before_the_fetch(server, kw_users):
    a = _session(server, kw_users["kw2"])
    _append(a, b"INBOX")
    _append(a, b"INBOX")
    a.cmd(b"s1 SELECT INBOX", b"s1")
    reply = a.cmd(b"s2 STORE 1 +FLAGS ($label1)", b"s2")
    assert _flags_line(reply) == SYSTEM | {"$label1"}
    assert "\\*" in _permanent(reply)
    assert reply.index(b"* FLAGS") < reply.index(b"* 1 FETCH")
    # Nothing new: no FLAGS again.
    reply = a.cmd(b"s3 STORE 2 +FLAGS ($label1)", b"s3")
    assert b"* FLAGS" not in reply and b"* 2 FETCH" in reply
    # Another session brings a keyword in; this one sees it at its next NOOP.
    b = _session(server, kw_users["kw2"])
    b.cmd(b"b1 SELECT INBOX", b"b1")
    assert b"b2 OK" in b.cmd(b"b2 STORE 2 +FLAGS (NonJunk)", b"b2")
    reply = _noop_until(a, b"FETCH")
    assert _flags_line(reply) == SYSTEM | {"$label1", "NonJunk"}
    assert reply.index(b"* FLAGS") < reply.index(b"* 2 FETCH")
    # APPEND and COPY into the selected mailbox.
    reply = a.cmd(b"s4 COPY 1 INBOX", b"s4")
    assert b"* FLAGS" not in reply
    a.send(b"s5 APPEND INBOX ($MDNSent) {%d}\r\n" % len(MSG))
    a.read_until(b"\r\n")
    a.send(MSG + b"\r\n")
    reply = a._tagged(b"s5")
    assert _flags_line(reply) == SYSTEM | {"$label1", "NonJunk", "$MDNSent"}
    a.close()
    b.close()


def test_keywords_are_case_insensitive_first_spelling_kept(server, kw_users):
    r = _session(server, kw_users["kw3"])
    _append(r, b"INBOX")
    _append(r, b"INBOX", b"$Label1")
    r.cmd(b"s1 SELECT INBOX", b"s1")
    reply = r.cmd(b"s2 STORE 1 +FLAGS ($label1 $LABEL1)", b"s2")
    assert b"* 1 FETCH (FLAGS ($Label1 \\Recent))" in reply
    assert b"* FLAGS" not in reply
    reply = r.cmd(b"s3 SEARCH KEYWORD $LABEL1", b"s3")
    assert b"* SEARCH 1 2\r\n" in reply
    reply = r.cmd(b"s4 STORE 2 -FLAGS ($LABEL1)", b"s4")
    assert b"* 2 FETCH (FLAGS (\\Recent))" in reply
    r.close()


def test_recent_belongs_to_one_session_and_status_agrees(server, kw_users):
    a = _session(server, kw_users["kw4"])
    for _ in range(3):
        _append(a, b"INBOX")
    a.cmd(b"c0 CREATE Target", b"c0")
    reply = a.cmd(b"s1 SELECT INBOX", b"s1")
    assert b"* 3 RECENT" in reply
    assert b"RECENT 3" in a.cmd(b"s2 STATUS INBOX (MESSAGES RECENT)", b"s2")
    # Another session selecting INBOX now sees no \Recent message, nor does STATUS.
    b = _session(server, kw_users["kw4"])
    assert b"* 0 RECENT" in b.cmd(b"b1 EXAMINE INBOX", b"b1")
    assert b"RECENT 0" in b.cmd(b"b2 STATUS Target (RECENT)", b"b2")
    # COPY and MOVE make the messages \Recent for the next session opening the target.
    a.cmd(b"s3 COPY 1 Target", b"s3")
    a.cmd(b"s4 MOVE 2 Target", b"s4")
    assert b"RECENT 2" in a.cmd(b"s5 STATUS Target (RECENT)", b"s5")
    reply = b.cmd(b"b3 EXAMINE Target", b"b3")
    assert b"* 2 RECENT" in reply
    reply = b.cmd(b"b4 SELECT Target", b"b4")
    assert b"* 2 RECENT" in reply
    c = _session(server, kw_users["kw4"])
    assert b"* 0 RECENT" in c.cmd(b"c1 SELECT Target", b"c1")
    for r in (a, b, c):
        r.close()


def test_status_without_items_is_bad(server, kw_users):
    r = _session(server, kw_users["kw5"])
    assert b"s1 BAD" in r.cmd(b"s1 STATUS INBOX ()", b"s1")
    assert b"s2 OK" in r.cmd(b"s2 NOOP", b"s2")
    r.close()
