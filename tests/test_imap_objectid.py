"""OBJECTID (RFC 8474) over real sockets: MAILBOXID survives RENAME and is never reused,
EMAILID is shared by the copies of a message, THREADID is NIL (no threads kept)."""

from __future__ import annotations

import re

import pytest

from tests.test_imap_extensions import Session, append

PASSWORD = "Ext-pass-2024"  # the password tests.test_imap_extensions.Session logs in with
MAILBOXID = re.compile(rb"MAILBOXID \(([A-Za-z0-9_-]{1,255})\)")
EMAILID = re.compile(rb"EMAILID \(([A-Za-z0-9_-]{1,255})\)")


@pytest.fixture(scope="module")
def account(server):
    address = f"objectid@{server.domain}"
    server.add_account(address, PASSWORD, name="Object Id")
    return address


def _created(s: Session, name: str) -> bytes:
    _, status = s.run(f"CREATE {name}")
    m = MAILBOXID.search(status)
    assert status.startswith(b"OK [MAILBOXID ("), status
    return m.group(1)


def test_mailboxid_is_stable_across_rename_and_never_reused(server, account):
    s = Session(server, account)
    assert b"OBJECTID" in s.ok("CAPABILITY")[0].split()
    first = _created(s, "Projects")
    assert MAILBOXID.search(s.ok("STATUS Projects (MESSAGES MAILBOXID)")[0]).group(1) == first
    s.ok("RENAME Projects Archive2024")
    lines = s.ok("SELECT Archive2024")
    assert [MAILBOXID.search(ln).group(1) for ln in lines if ln.startswith(b"* OK [MAILBOXID")] == [first]
    listed = s.ok('LIST "" "Archive2024" RETURN (STATUS (MAILBOXID))')
    assert any(MAILBOXID.search(ln) and MAILBOXID.search(ln).group(1) == first for ln in listed), listed
    s.ok("UNSELECT")
    s.ok("DELETE Archive2024")
    again = _created(s, "Archive2024")  # the same name again is another mailbox
    assert again != first and _created(s, "Projects") not in (first, again)
    inbox = MAILBOXID.search(s.ok("STATUS INBOX (MAILBOXID)")[0]).group(1)
    assert inbox not in (first, again)
    s.close()


def test_emailid_is_kept_by_copy_and_move_and_searchable(server, account):
    s = Session(server, account)
    s.ok("CREATE Source")
    s.ok("CREATE Copies")
    uid = append(s, "Source", "objectid one")
    append(s, "Source", "objectid two")
    s.ok("SELECT Source")
    lines = s.ok(f"UID FETCH {uid} (EMAILID THREADID)")
    emailid = EMAILID.search(lines[0]).group(1)
    assert b"THREADID NIL" in lines[0]
    other = EMAILID.search(s.ok("FETCH 2 (EMAILID)")[0]).group(1)
    assert other != emailid
    s.ok(f"UID COPY {uid} Copies")
    s.ok(f"UID MOVE {uid} INBOX")
    assert s.ok(b"SEARCH EMAILID " + other) == [b"* SEARCH 1"]
    assert s.ok(b"SEARCH EMAILID " + emailid) == [b"* SEARCH"]  # moved away
    s.ok("SELECT Copies")
    assert EMAILID.search(s.ok("FETCH 1 (EMAILID)")[0]).group(1) == emailid
    assert s.ok(b"UID SEARCH OR EMAILID " + emailid + b" EMAILID " + other) == [b"* SEARCH 1"]
    assert s.ok("SEARCH THREADID T0123") == [b"* SEARCH"]
    assert s.ok("SEARCH EMAILID Mnotoursatall") == [b"* SEARCH"]
    _, status = s.run('SEARCH EMAILID "M 1"')
    assert status.startswith(b"BAD")
    s.ok("SELECT INBOX")
    assert s.ok(b"SEARCH EMAILID " + emailid) == [b"* SEARCH 1"]
    s.close()
