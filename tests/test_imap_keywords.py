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
