"""ACL (RFC 4314) and LIST-MYRIGHTS (RFC 8440) over unit-mailbox delegation: the letters of
imap/acl.py, and over real sessions a head, a delegate and a stranger. SETACL by the head is the
same delegation as ``mailserver unit delegate`` (same audit), anyone else gets NO [NOPERM]."""

from __future__ import annotations

import re

import pytest

from imap import mutf7
from imap.acl import Unexpressible, apply_change, letters, listrights_groups, owner_letters, parse_change
from storage.api import Right
from tests.test_imap_e2e import deliver
from tests.test_imap_extensions import Session

pytestmark = pytest.mark.requirement("R-ACC-1")

PASSWORD = "Ext-pass-2024"
UNIT_PATH = "Đơn vị/Phòng Pháp chế"
INBOX = f"{UNIT_PATH}/INBOX"
WIRE_INBOX = mutf7.encode(INBOX)


def w(name: str) -> str:
    return '"' + mutf7.encode(name).decode() + '"'


# -- the letters (pure) ------------------------------------------------------------------------

def test_letters_of_each_right_and_of_the_head():
    assert letters({Right.READ}, head=False) == "lr"
    assert letters({Right.READ, Right.WRITE_FLAGS}, head=False) == "lrsw"
    assert letters({Right.READ, Right.DELETE}, head=False) == "lrted"  # d: the obsolete union (§2.1.1)
    assert letters({Right.SEND_AS}, head=False) == "0"
    assert letters(frozenset(Right), head=False) == "lrswted0"  # a delegate with "all" is not the head
    assert owner_letters() == "lrswikxtecda0"
    assert letters(frozenset(), head=False) == ""


def test_setacl_rights_map_onto_whole_groups_or_are_refused():
    assert parse_change("lrsw").rights == {Right.READ, Right.WRITE_FLAGS}
    assert parse_change("+te").mode == "add" and parse_change("+te").rights == {Right.DELETE}
    assert parse_change("-0").mode == "remove" and parse_change("-0").rights == {Right.SEND_AS}
    assert parse_change("+d").rights == {Right.DELETE}
    assert parse_change("").rights == frozenset()
    for bad, why in (("l", "lr go together"), ("lrw", "sw go together"), ("lrt", "te go together"),
                     ("lri", "head of the unit alone"), ("+a", "head of the unit alone"),
                     ("+c", "head of the unit alone"), ("+p", "head of the unit alone"), ("lrZ", "Unknown")):
        with pytest.raises(Unexpressible, match=why):
            parse_change(bad)


def test_apply_change_sets_adds_and_removes():
    current = frozenset({Right.READ, Right.WRITE_FLAGS})
    assert apply_change(current, parse_change("+te")) == {Right.READ, Right.WRITE_FLAGS, Right.DELETE}
    assert apply_change(current, parse_change("-sw")) == {Right.READ}
    assert apply_change(current, parse_change("lr")) == {Right.READ}
    assert listrights_groups() == ["", "lr", "sw", "te", "0"]


# -- over real sessions ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def org(server):
    d = server.domain
    people = {k: f"acl-{k}@{d}" for k in ("head", "clerk", "stranger", "newbie", "temp", "mover")}
    for address in people.values():
        server.add_account(address, PASSWORD, name="Lê Văn Cường")
    unit = f"phapche@{d}"
    server.cli("unit", "add", "Phòng Pháp chế", "--code", "pc-acl", "--address", unit, "--head", people["head"],
               "--password", "Unit-pass-2024")
    server.cli("unit", "delegate", "pc-acl", people["clerk"], "--rights", "read,write-flags")
    deliver(server, unit, subject="Công văn đến")
    people["unit"] = unit
    return people


def status_of(s: Session, command: str) -> bytes:
    _, status = s.run(command)
    return status


def test_capabilities_advertise_acl_and_list_myrights(server, org):
    s = Session(server, org["clerk"])
    caps = s.ok("CAPABILITY")[0].split()
    assert {b"ACL", b"RIGHTS=texk", b"LIST-MYRIGHTS"} <= set(caps)
    s.close()


def test_head_sees_the_whole_acl_and_what_can_be_granted(server, org):
    s = Session(server, org["head"])
    assert s.ok(f"MYRIGHTS {w(INBOX)}") == [b'* MYRIGHTS "' + WIRE_INBOX + b'" "lrswikxtecda0"']
    acl = s.ok(f"GETACL {w(INBOX)}")
    assert acl == [b'* ACL "' + WIRE_INBOX + b'" "%s" "lrswikxtecda0" "%s" "lrswikxtecda0" "%s" "lrsw"' % (
        org["unit"].encode(), org["head"].encode(), org["clerk"].encode())]
    assert s.ok(f'LISTRIGHTS {w(INBOX)} "{org["stranger"]}"') == [
        b'* LISTRIGHTS "' + WIRE_INBOX + b'" "%s" "" "lr" "sw" "te" "0"' % org["stranger"].encode()]
    assert s.ok(f'LISTRIGHTS {w(INBOX)} "{org["head"]}"') == [
        b'* LISTRIGHTS "' + WIRE_INBOX + b'" "%s" "lrswikxtecda0"' % org["head"].encode()]
    assert s.ok(f'LISTRIGHTS {w(INBOX)} "anyone"') == [b'* LISTRIGHTS "' + WIRE_INBOX + b'" "anyone" ""']
    s.close()


def test_delegate_sees_its_real_rights_and_may_not_read_or_change_the_acl(server, org):
    s = Session(server, org["clerk"])
    assert s.ok(f"MYRIGHTS {w(INBOX)}") == [b'* MYRIGHTS "' + WIRE_INBOX + b'" "lrsw"']
    assert s.ok("MYRIGHTS INBOX") == [b'* MYRIGHTS "INBOX" "lrswikxtecda0"']
    for command in (f"GETACL {w(INBOX)}", f'LISTRIGHTS {w(INBOX)} "{org["clerk"]}"',
                    f'SETACL {w(INBOX)} "{org["clerk"]}" "+te"', f'DELETEACL {w(INBOX)} "{org["clerk"]}"'):
        assert status_of(s, command).startswith(b"NO [NOPERM]"), command
    lines = s.ok('LIST "" "*" RETURN (MYRIGHTS)')
    assert b'* LIST (\\HasNoChildren) "/" "' + WIRE_INBOX + b'" ("MYRIGHTS" "lrsw")' in lines
    assert b'* LIST (\\HasNoChildren) "/" "INBOX" ("MYRIGHTS" "lrswikxtecda0")' in lines
    assert any(line.startswith(b'* LIST (\\NonExistent \\HasChildren) "/" ') and b"MYRIGHTS" not in line
               for line in lines)  # no rights on a name that is no folder
    s.close()
    s = Session(server, org["head"])  # the clerk's rights are unchanged
    assert b'"%s" "lrsw"' % org["clerk"].encode() in s.ok(f"GETACL {w(INBOX)}")[0]
    s.close()


def test_stranger_gets_noperm_and_personal_mailboxes_are_not_shared(server, org):
    s = Session(server, org["stranger"])
    assert status_of(s, f'SETACL {w(INBOX)} "{org["stranger"]}" "lrswte"').startswith(b"NO [NOPERM]")
    assert status_of(s, f"GETACL {w(INBOX)}").startswith(b"NO [NOPERM]")
    assert status_of(s, f"MYRIGHTS {w(INBOX)}").startswith(b"NO [NONEXISTENT]")
    assert s.ok("GETACL INBOX") == [b'* ACL "INBOX" "%s" "lrswikxtecda0"' % org["stranger"].encode()]
    status = status_of(s, f'SETACL INBOX "{org["clerk"]}" "lr"')
    assert status.startswith(b"NO [CANNOT]") and b"R-ACC-1" in status, status
    assert status_of(s, f"SELECT {w(INBOX)}").startswith(b"NO [NONEXISTENT]")
    s.close()


def test_head_setacl_is_the_unit_delegate_operation_and_takes_effect(server, org):
    head, newbie = Session(server, org["head"]), Session(server, org["newbie"])
    assert status_of(newbie, f"SELECT {w(INBOX)}").startswith(b"NO [NONEXISTENT]")
    head.ok(f'SETACL {w(INBOX)} "{org["newbie"]}" "+lr"')
    assert b"* 1 EXISTS" in newbie.ok(f"EXAMINE {w(INBOX)}")
    assert newbie.ok(f"MYRIGHTS {w(INBOX)}") == [b'* MYRIGHTS "' + WIRE_INBOX + b'" "lr"']
    shown = server.cli("unit", "show", "pc-acl").stdout
    assert re.search(rf"{re.escape(org['newbie'])}\s+read\s", shown), shown
    assert re.search(rf"{re.escape(org['head'])}\s+delegate\s+{re.escape(org['newbie'])} read", shown), shown
    head.ok(f'SETACL {w(INBOX)} "{org["newbie"]}" "+d"')  # the obsolete d: delete messages
    assert newbie.ok(f"MYRIGHTS {w(INBOX)}") == [b'* MYRIGHTS "' + WIRE_INBOX + b'" "lrted"']
    head.ok(f'SETACL {w(INBOX)} "{org["newbie"]}" "-te"')
    assert newbie.ok(f"MYRIGHTS {w(INBOX)}") == [b'* MYRIGHTS "' + WIRE_INBOX + b'" "lr"']
    head.ok(f'DELETEACL {w(INBOX)} "{org["newbie"]}"')
    assert status_of(newbie, "FETCH 1 (FLAGS)").startswith(b"NO [NOPERM]")  # checked at every command
    assert status_of(newbie, f"MYRIGHTS {w(INBOX)}").startswith(b"NO [NONEXISTENT]")
    shown = server.cli("unit", "show", "pc-acl").stdout
    assert re.search(rf"{re.escape(org['head'])}\s+undelegate\s+{re.escape(org['newbie'])}", shown), shown
    head.close()
    newbie.close()


def test_setacl_refuses_what_the_model_cannot_hold(server, org):
    s = Session(server, org["head"])
    for rights, why in (("w", b"sw go together"), ("lrk", b"head of the unit alone"), ("lrswa", b"head of the unit alone")):
        status = status_of(s, f'SETACL {w(INBOX)} "{org["temp"]}" "{rights}"')
        assert status.startswith(b"NO [CANNOT]") and why in status, status
    status = status_of(s, f'SETACL {w(INBOX)} "{org["head"]}" "lr"')
    assert status.startswith(b"NO [CANNOT]") and b"fixed" in status, status
    status = status_of(s, f'SETACL {w(INBOX)} "nobody@{server.domain}" "lr"')
    assert status.startswith(b"NO [CANNOT]"), status
    assert status_of(s, f'SETACL {w(UNIT_PATH + "/Không có")} "{org["temp"]}" "lr"').startswith(b"NO [NONEXISTENT]")
    assert b'"%s"' % org["temp"].encode() not in s.ok(f"GETACL {w(INBOX)}")[0]
    assert status_of(s, 'SETACL INBOX').startswith(b"BAD")
    s.close()


def test_rights_set_by_acl_are_those_the_commands_enforce(server, org):
    head, mover = Session(server, org["head"]), Session(server, org["mover"])
    head.ok(f'SETACL {w(INBOX)} "{org["mover"]}" "lrte"')
    mover.ok(f"SELECT {w(INBOX)}")
    assert status_of(mover, "STORE 1 +FLAGS (\\Seen)").startswith(b"NO [NOPERM]")  # no s
    mover.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")  # t
    mover.ok("STORE 1 -FLAGS.SILENT (\\Deleted)")
    assert status_of(mover, f"APPEND {w(INBOX)} {{1+}}\r\nx").startswith(b"NO [NOPERM]")  # no i
    head.ok(f'SETACL {w(INBOX)} "{org["mover"]}" "-te"')
    assert status_of(mover, "STORE 1 +FLAGS.SILENT (\\Deleted)").startswith(b"NO [NOPERM]")
    head.close()
    mover.close()
