"""Unit mailboxes in the IMAP shared namespace over real sessions: delegates see and
read them with the rights the head granted, refusals are NO [NOPERM], accesses are audited, a
handover leaves every message visible to the new head; SASL PLAIN authorization identity."""

from __future__ import annotations

import base64
import re

import pytest

from imap import mutf7
from tests.test_imap_e2e import deliver
from tests.test_imap_extensions import Session

PASSWORD = "Ext-pass-2024"  # the one tests.test_imap_extensions.Session logs in with
UNIT_PATH = "Đơn vị/Văn phòng"
INBOX = f"{UNIT_PATH}/INBOX"


def w(name: str) -> str:
    """A folder name as a quoted modified UTF-7 argument."""
    return '"' + mutf7.encode(name).decode() + '"'


def listed(s: Session) -> dict[str, bytes]:
    """LIST "" "*" → {decoded name: attributes}."""
    out = {}
    for line in s.ok('LIST "" "*"'):
        m = re.match(rb'^\* LIST \(([^)]*)\) "/" "?(.*?)"?$', line)
        assert m, line
        out[mutf7.decode(m.group(2))] = m.group(1)
    return out


@pytest.fixture(scope="module")
def org(server):
    d = server.domain
    people = {k: f"sh-{k}@{d}" for k in ("head", "clerk", "viewer", "outsider", "newhead")}
    for address in people.values():
        server.add_account(address, PASSWORD, name="Trần Thị Bình")
    unit = f"vanphong@{d}"
    server.cli("unit", "add", "Văn phòng", "--code", "vp-sh", "--address", unit, "--head", people["head"],
               "--password", "Unit-pass-2024")
    server.cli("unit", "delegate", "vp-sh", people["clerk"], "--rights", "read,write-flags")
    server.cli("unit", "delegate", "vp-sh", people["viewer"], "--rights", "read")
    for n in range(3):
        deliver(server, unit, subject=f"Công văn đến số {n}")
    people["unit"] = unit
    return people


def test_namespace_and_list_show_the_unit_mailbox_to_a_delegate(server, org):
    s = Session(server, org["clerk"])
    assert s.ok("NAMESPACE") == [b'* NAMESPACE (("" "/")) NIL (("&ARABoQ-n v&Hss-/" "/"))']
    names = listed(s)
    assert names["Đơn vị"] == b"\\Noselect \\HasChildren"
    assert names[UNIT_PATH] == b"\\Noselect \\HasChildren"
    assert names[INBOX] == b"\\HasNoChildren"
    assert names[f"{UNIT_PATH}/Sent"] == b"\\HasNoChildren"  # the unit's special use is not the delegate's
    assert names["Sent"] == b"\\HasNoChildren \\Sent"
    s.close()


def test_delegate_reads_the_unit_mailbox_and_the_access_is_audited(server, org):
    s = Session(server, org["clerk"])
    lines = s.ok(f"SELECT {w(INBOX)}")
    assert b"* 3 EXISTS" in lines
    assert b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Seen \\Draft \\*)] Flags permitted" in lines
    body = b"".join(s.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert "Công văn đến số 0".encode() in body
    assert s.ok("UID SEARCH ALL") == [b"* SEARCH 1 2 3"]
    assert s.ok(f"STATUS {w(INBOX)} (MESSAGES)") == [b"* STATUS " + w(INBOX).encode() + b" (MESSAGES 3)"]
    s.ok("STORE 1 +FLAGS (\\Flagged)")
    s.close()
    shown = server.cli("unit", "show", "vp-sh").stdout
    assert org["clerk"] in shown and "select" in shown


def test_delegate_without_delete_gets_noperm_on_deleted_and_expunge(server, org):
    s = Session(server, org["clerk"])
    s.ok(f"SELECT {w(INBOX)}")
    _, status = s.run("STORE 2 +FLAGS (\\Deleted)")
    assert status.startswith(b"NO [NOPERM]"), status
    _, status = s.run("EXPUNGE")
    assert status.startswith(b"NO [NOPERM]"), status
    _, status = s.run("MOVE 1 INBOX")  # moving out needs delete
    assert status.startswith(b"NO [NOPERM]"), status
    _, status = s.run(f"COPY 1 {w(UNIT_PATH + '/Trash')}")  # copying into the unit: the head only
    assert status.startswith(b"NO [NOPERM]"), status
    _, status = s.run(f"CREATE {w(UNIT_PATH + '/Lưu trữ')}")
    assert status.startswith(b"NO [NOPERM]"), status
    s.ok("COPY 1 INBOX")  # reading out into one's own mailbox is fine
    assert s.ok("STATUS INBOX (MESSAGES)")[0].endswith(b"(MESSAGES 1)")
    s.close()


def test_read_only_delegate_cannot_change_flags_and_fetch_does_not_mark_seen(server, org):
    s = Session(server, org["viewer"])
    lines = s.ok(f"SELECT {w(INBOX)}")
    assert b"* OK [PERMANENTFLAGS ()] Flags permitted" in lines
    _, status = s.run("STORE 3 +FLAGS (\\Seen)")
    assert status.startswith(b"NO [NOPERM]"), status
    s.ok("FETCH 3 (BODY[])")
    assert b"\\Seen" not in b"".join(s.ok("FETCH 3 (FLAGS)"))
    s.close()


def test_undelegated_user_sees_nothing_and_cannot_open_it(server, org):
    s = Session(server, org["outsider"])
    assert not [n for n in listed(s) if n.startswith("Đơn vị")]
    _, status = s.run(f"SELECT {w(INBOX)}")
    assert status.startswith(b"NO [NONEXISTENT]"), status
    _, status = s.run(f"GETQUOTAROOT {w(INBOX)}")
    assert status.startswith(b"NO"), status
    s.close()


def test_head_manages_unit_folders_and_quota_root_is_the_unit(server, org):
    s = Session(server, org["head"])
    s.ok(f"CREATE {w(UNIT_PATH + '/Công văn đi')}")
    assert UNIT_PATH + "/Công văn đi" in listed(s)
    s.ok(f"SELECT {w(INBOX)}")
    lines = s.ok(f"COPY 1 {w(UNIT_PATH + '/Công văn đi')}")
    lines = s.ok(f"GETQUOTAROOT {w(INBOX)}")
    assert lines[0] == b"* QUOTAROOT " + w(INBOX).encode() + b" " + w(UNIT_PATH).encode()
    assert lines[1].startswith(b"* QUOTA " + w(UNIT_PATH).encode() + b" (STORAGE ")
    s.ok(f"DELETE {w(UNIT_PATH + '/Công văn đi')}")
    s.close()


def test_sasl_plain_authorization_identity_logs_in_as_the_unit(server, org):
    s = Session(server)
    ir = base64.b64encode(f"{org['unit']}\0{org['viewer']}\0{PASSWORD}".encode()).decode()
    s.ok(f"AUTHENTICATE PLAIN {ir}")
    assert b"* 3 EXISTS" in s.ok("EXAMINE INBOX")
    s.ok("SELECT INBOX")
    _, status = s.run("STORE 1 +FLAGS (\\Seen)")  # still only the viewer's rights
    assert status.startswith(b"NO [NOPERM]"), status
    s.close()
    s = Session(server)
    ir = base64.b64encode(f"{org['unit']}\0{org['outsider']}\0{PASSWORD}".encode()).decode()
    _, status = s.run(f"AUTHENTICATE PLAIN {ir}")
    assert status.startswith(b"NO [AUTHORIZATIONFAILED]"), status
    ir = base64.b64encode(f"{org['unit']}\0{org['outsider']}\0wrong".encode()).decode()
    _, status = s.run(f"AUTHENTICATE PLAIN {ir}")
    assert status.startswith(b"NO [AUTHENTICATIONFAILED]"), status
    s.close()


def test_handover_keeps_every_message_visible_to_the_new_head(server, org):
    old = Session(server, org["head"])
    old.ok(f"SELECT {w(INBOX)}")
    old.ok("STORE 2 +FLAGS (\\Answered)")
    old.ok("STORE 1 +FLAGS (\\Flagged)")  # its own flags: xdist may run it without the tests above
    server.cli("unit", "handover", "vp-sh", "--to", org["newhead"])
    try:
        _, status = old.run("FETCH 1 (FLAGS)")  # rights are checked again at every command
        assert status.startswith(b"NO [NOPERM]"), status
    except ConnectionError:
        pass  # or the session check ended it first (tests/test_session_revalidate.py): no read either
    old.close()
    again = Session(server, org["head"])
    assert not [n for n in listed(again) if n.startswith("Đơn vị")]
    again.close()
    s = Session(server, org["newhead"])
    assert INBOX in listed(s)
    assert b"* 3 EXISTS" in s.ok(f"SELECT {w(INBOX)}")
    flags = b"".join(s.ok("FETCH 1:3 (FLAGS)"))
    assert b"\\Answered" in flags and b"\\Flagged" in flags
    s.close()
