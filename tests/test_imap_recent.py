"""\\Recent when mail arrives while several sessions have the mailbox selected (RFC 3501 §2.3.2):
exactly one session sees an arrival as \\Recent, and STATUS and a later SELECT/EXAMINE agree."""

from __future__ import annotations

import re

import pytest

from tests.test_imap_e2e import PASSWORD, Raw
from tests.conftest import wait_until

MSG = b"From: a@example.gov.vn\r\nTo: b@example.gov.vn\r\nSubject: r\r\n\r\nbody\r\n"


@pytest.fixture(scope="module")
def recent_user(server):
    address = f"recent1@{server.domain}"
    server.add_account(address, PASSWORD, name="Recent")
    return address


def _session(server, address) -> Raw:
    r = Raw(server)
    r.login(address)
    return r


def _append(r: Raw) -> None:
    r.send(b"ap APPEND INBOX {%d}\r\n" % len(MSG))
    assert r.read_until(b"\r\n").startswith(b"+")
    r.send(MSG + b"\r\n")
    assert b"ap OK" in r._tagged(b"ap")


def _recent_flags(r: Raw, tag: bytes, count: int) -> dict[int, bool]:
    """UID → whether FETCH shows \\Recent, once the session knows ``count`` messages (NOOP until then)."""

    def seen() -> dict[int, bool] | None:
        r.cmd(tag + b"n NOOP", tag + b"n")
        reply = r.cmd(tag + b" FETCH 1:* (UID FLAGS)", tag)
        found = {int(u): b"\\Recent" in f for u, f in re.findall(rb"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)", reply)}
        return found if len(found) >= count else None

    return wait_until(seen, what=f"the session seeing {count} messages")


def test_arrivals_are_recent_in_exactly_one_of_the_selecting_sessions(server, recent_user):
    a, b, idler, writer = (_session(server, recent_user) for _ in range(4))
    for r, tag in ((a, b"a1"), (b, b"b1"), (idler, b"i1")):
        assert b"* 0 RECENT" in r.cmd(tag + b" SELECT INBOX", tag)
    idler.send(b"i2 IDLE\r\n")
    assert b"+ idling" in idler.read_until(b"+ idling")
    for _ in range(3):
        _append(writer)
    # The idling session hears of every arrival; \Recent ones come with a RECENT count.
    seen = idler.read_until(b"* 3 EXISTS", timeout=10)
    assert b"* 3 EXISTS" in seen
    idler.send(b"DONE\r\n")
    idler._tagged(b"i2")
    views = [_recent_flags(r, tag, 3) for r, tag in ((a, b"a2"), (b, b"b2"), (idler, b"i3"))]
    for uid in views[0]:
        holders = [v[uid] for v in views].count(True)
        assert holders == 1, (uid, views)
    # STATUS from a fourth session: no arrival is left for a later SELECT, as EXAMINE agrees.
    assert b"RECENT 0" in writer.cmd(b"w1 STATUS INBOX (MESSAGES RECENT)", b"w1")
    assert b"* 0 RECENT" in writer.cmd(b"w2 EXAMINE INBOX", b"w2")
    # Each session's own STATUS counts the arrivals it holds as \Recent.
    for r, tag, view in ((a, b"a3", views[0]), (b, b"b3", views[1]), (idler, b"i4", views[2])):
        assert b"RECENT %d)" % sum(view.values()) in r.cmd(tag + b" STATUS INBOX (RECENT)", tag)
    for r in (a, b, idler, writer):
        r.close()


def test_examine_leaves_arrivals_recent_for_the_next_select(server, recent_user):
    watcher, writer = _session(server, recent_user), _session(server, recent_user)
    watcher.cmd(b"e1 EXAMINE INBOX", b"e1")
    _append(writer)
    _recent_flags(watcher, b"e2", 1)
    status = writer.cmd(b"w1 STATUS INBOX (RECENT)", b"w1")
    assert b"RECENT 1)" in status
    assert b"* 1 RECENT" in writer.cmd(b"w2 SELECT INBOX", b"w2")
    watcher.close()
    writer.close()
