"""NOTIFY (RFC 5465) end to end over raw sockets: what a session is told unasked, with no
command in progress, when another session changes the mailboxes; the argument rules; NOTIFY
with IDLE. The parser's rules have unit tests at the end."""

from __future__ import annotations

import itertools
import re

import pytest

from imap.notifyspec import BadEvent, parse_notify
from imap.wire import Command, ParseError, tokenize
from tests.test_imap_e2e import PASSWORD, Raw

MSG = b"From: a@example.gov.vn\r\nTo: b@example.gov.vn\r\nSubject: n\r\n\r\nbody\r\n"
_ids = itertools.count(1)


@pytest.fixture
def user(server):
    address = f"notify{next(_ids)}@{server.domain}"
    server.add_account(address, PASSWORD, name="Notify")
    return address


def _session(server, address) -> Raw:
    r = Raw(server)
    r.login(address)
    return r


def _append(r: Raw, box: bytes, flags: bytes = b"") -> None:
    r.send(b"ap APPEND %s (%s) {%d}\r\n" % (box, flags, len(MSG)))
    assert r.read_until(b"\r\n").startswith(b"+")
    r.send(MSG + b"\r\n")
    assert b"ap OK" in r._tagged(b"ap")


def _unasked(r: Raw, marker: bytes, timeout: float = 10.0) -> bytes:
    """What the server sends with no command in progress, up to ``marker``."""
    got = r.read_until(marker, timeout=timeout)
    assert marker in got, got
    return got


def _nothing_more(r: Raw) -> bytes:
    """Everything sent before a NOOP's answer (what was held back, or nothing)."""
    return r.cmd(b"zz NOOP", b"zz")


def test_capability_and_argument_errors(server, user):
    r = _session(server, user)
    assert b" NOTIFY" in r.cmd(b"c1 CAPABILITY", b"c1")
    assert b"n1 OK" in r.cmd(b"n1 NOTIFY NONE", b"n1")
    assert b"n2 BAD" in r.cmd(b"n2 NOTIFY SET (PERSONAL (MessageNew))", b"n2")
    assert b"n3 BAD" in r.cmd(b"n3 NOTIFY SET (PERSONAL (MessageNew (UID) MessageExpunge))", b"n3")
    assert b"n4 BAD" in r.cmd(b"n4 NOTIFY SET (BOGUS (MessageNew MessageExpunge))", b"n4")
    assert b"n5 BAD" in r.cmd(b"n5 NOTIFY", b"n5")
    reply = r.cmd(b"n6 NOTIFY SET (PERSONAL (MailboxMetadataChange))", b"n6")
    assert b"n6 NO [BADEVENT (" in reply and b"MessageNew" in reply
    assert b"n7 BAD" in r.cmd(b"n7 NOTIFY SET (SELECTED (MailboxName))", b"n7")
    r.close()


def test_status_for_other_mailboxes_without_a_command(server, user):
    r, other = _session(server, user), _session(server, user)
    r.cmd(b"c1 CREATE Work", b"c1")
    _append(other, b"Work")
    r.cmd(b"s1 SELECT INBOX", b"s1")
    reply = r.cmd(b"n1 NOTIFY SET STATUS (PERSONAL (MessageNew MessageExpunge))", b"n1")
    assert b'* STATUS "Work" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ' in reply
    assert b"* STATUS \"INBOX\"" not in reply  # the selected mailbox is told by EXISTS, not STATUS
    _append(other, b"Work")
    got = _unasked(r, b")\r\n")
    assert re.search(rb'\* STATUS "Work" \(MESSAGES 2 UIDNEXT 3 UIDVALIDITY \d+ UNSEEN 2\)', got), got
    # A flag change is not a subscribed event here: no STATUS for it.
    other.cmd(b"o1 SELECT Work", b"o1")
    other.cmd(b"o2 STORE 1 +FLAGS (\\Seen)", b"o2")
    other.cmd(b"o3 EXPUNGE", b"o3")
    other.cmd(b"o4 STORE 1 +FLAGS (\\Deleted)", b"o4")
    other.cmd(b"o5 EXPUNGE", b"o5")
    got = _unasked(r, b"MESSAGES 1 ")
    assert b"UNSEEN 1)" in got and b"MESSAGES 2 " not in got.split(b"MESSAGES 1 ")[1]
    r.close()
    other.close()


def test_flag_change_in_other_mailbox_with_condstore(server, user):
    r, other = _session(server, user), _session(server, user)
    r.cmd(b"c1 CREATE Work", b"c1")
    _append(other, b"Work")
    r.cmd(b"e1 ENABLE CONDSTORE", b"e1")
    r.cmd(b"n1 NOTIFY SET (MAILBOXES Work (MessageNew MessageExpunge FlagChange))", b"n1")
    other.cmd(b"o1 SELECT Work", b"o1")
    other.cmd(b"o2 STORE 1 +FLAGS (\\Flagged)", b"o2")
    got = _unasked(r, b")\r\n")
    assert re.search(rb'\* STATUS "Work" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1 HIGHESTMODSEQ \d+\)', got), got
    r.close()
    other.close()


def test_selected_mailbox_new_messages_with_fetch_flags_and_expunge(server, user):
    r, other = _session(server, user), _session(server, user)
    _append(other, b"INBOX")
    r.cmd(b"s1 SELECT INBOX", b"s1")
    assert b"n1 OK" in r.cmd(b"n1 NOTIFY SET (SELECTED (MessageNew (UID FLAGS) MessageExpunge FlagChange))", b"n1")
    _append(other, b"INBOX", b"$Work")
    got = _unasked(r, b"FETCH (UID 2 ")
    assert b"* 2 EXISTS" in got and b"* FLAGS (" in got and b"$Work" in got.split(b"* FLAGS (")[1]
    if not re.search(rb"\* 2 FETCH \(UID 2 FLAGS \([^)]*\)\)\r\n", got):  # the rest of the line
        got += _unasked(r, b"))\r\n")
    assert re.search(rb"\* 2 FETCH \(UID 2 FLAGS \(\$Work( \\Recent)?\)\)", got), got
    other.cmd(b"o1 SELECT INBOX", b"o1")
    other.cmd(b"o2 STORE 1 +FLAGS (\\Flagged)", b"o2")
    got = _unasked(r, b"\\Flagged")
    assert re.search(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged( \\Recent)?\)\)", got), got
    other.cmd(b"o3 STORE 1 +FLAGS (\\Deleted)", b"o3")
    other.cmd(b"o4 EXPUNGE", b"o4")
    got = _unasked(r, b"* 1 EXPUNGE\r\n")
    assert b"a1 OK" in r.cmd(b"a1 FETCH 1 (UID)", b"a1") and b"UID 2" in r.cmd(b"a2 FETCH 1 (UID)", b"a2")
    r.close()
    other.close()


def test_selected_delayed_holds_expunges_for_a_command(server, user):
    r, other = _session(server, user), _session(server, user)
    _append(other, b"INBOX")
    _append(other, b"INBOX")
    r.cmd(b"s1 SELECT INBOX", b"s1")
    r.cmd(b"n1 NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge))", b"n1")
    other.cmd(b"o1 SELECT INBOX", b"o1")
    other.cmd(b"o2 STORE 1 +FLAGS (\\Deleted)", b"o2")
    other.cmd(b"o3 EXPUNGE", b"o3")
    _append(other, b"INBOX")
    assert b"* 3 EXISTS" in _unasked(r, b"* 3 EXISTS\r\n")
    reply = r.cmd(b"f1 FETCH 2 (UID)", b"f1")  # FETCH may not report the expunge
    assert b"EXPUNGE" not in reply and b"* 2 FETCH (UID 2)" in reply
    assert b"* 1 EXPUNGE" in _nothing_more(r)
    r.close()
    other.close()


def test_mailbox_name_and_subscription_change(server, user):
    r, other = _session(server, user), _session(server, user)
    r.cmd(b"n1 NOTIFY SET (PERSONAL (MailboxName SubscriptionChange))", b"n1")
    other.cmd(b"o1 CREATE Projects", b"o1")
    assert b'* LIST (\\HasNoChildren) "/" "Projects"\r\n' in _unasked(r, b'Projects"\r\n')
    other.cmd(b"o2 RENAME Projects Archive2026", b"o2")
    got = _unasked(r, b'("OLDNAME" ("Projects"))\r\n')
    assert b'* LIST (\\HasNoChildren) "/" "Archive2026" ("OLDNAME" ("Projects"))' in got
    other.cmd(b"o3 SUBSCRIBE Archive2026", b"o3")
    assert b'* LIST (\\Subscribed) "/" "Archive2026"\r\n' in _unasked(r, b'Archive2026"\r\n')
    other.cmd(b"o4 UNSUBSCRIBE Archive2026", b"o4")
    assert b'* LIST () "/" "Archive2026"\r\n' in _unasked(r, b'Archive2026"\r\n')
    other.cmd(b"o5 DELETE Archive2026", b"o5")
    assert b'* LIST (\\NonExistent) "/" "Archive2026"\r\n' in _unasked(r, b'Archive2026"\r\n')
    # NOTIFY NONE: nothing more is told unasked.
    r.cmd(b"n2 NOTIFY NONE", b"n2")
    other.cmd(b"o6 CREATE Quiet", b"o6")
    assert b"Quiet" not in r.cmd(b"x1 NOOP", b"x1") + r.cmd(b"x2 NOOP", b"x2")
    r.close()
    other.close()


def test_idle_follows_notify(server, user):
    """With NOTIFY in effect, IDLE tells what NOTIFY asked for (RFC 5465 §3): here new messages
    of the selected mailbox but not its flag changes, and the STATUS of another folder."""
    r, other = _session(server, user), _session(server, user)
    r.cmd(b"c1 CREATE Work", b"c1")
    _append(other, b"INBOX")
    r.cmd(b"s1 SELECT INBOX", b"s1")
    r.cmd(b"n1 NOTIFY SET (SELECTED (MessageNew MessageExpunge)) (INBOXES NONE) (PERSONAL (MessageNew MessageExpunge))", b"n1")
    r.send(b"i1 IDLE\r\n")
    assert b"+ idling" in r.read_until(b"+ idling")
    other.cmd(b"o1 SELECT INBOX", b"o1")
    other.cmd(b"o2 STORE 1 +FLAGS (\\Flagged)", b"o2")
    _append(other, b"Work")
    got = _unasked(r, b'* STATUS "Work"')
    _append(other, b"INBOX")
    got += _unasked(r, b"* 2 EXISTS")
    assert b"FETCH" not in got
    r.send(b"DONE\r\n")
    # The flag change is told in a command's response (IDLE's end), as RFC 3501 has it.
    tail = r._tagged(b"i1")
    assert b"i1 OK" in tail and b"\\Flagged" in tail + r.cmd(b"x1 NOOP", b"x1")
    r.close()
    other.close()


# -- the parser ------------------------------------------------------------------------------------

def _parse(text: bytes):
    cmd = Command()
    cmd.segments.append(b"t NOTIFY " + text)
    tokens = tokenize(cmd)[2:]
    return parse_notify(tokens, utf8=False)


def test_parse_first_matching_group_applies():
    spec = _parse(b'SET STATUS (SELECTED (MessageNew (UID BODY.PEEK[HEADER]) MessageExpunge)) '
                  b'(MAILBOXES (Junk "Sent") NONE) (SUBTREE Lists (MessageNew MessageExpunge FlagChange)) '
                  b'(PERSONAL (MessageNew MessageExpunge MailboxName))')
    assert spec.status and spec.selected == {"messagenew", "messageexpunge"} and not spec.delayed
    assert [i.name for i in spec.fetch][0] == b"UID"
    assert spec.events_for("Junk") == frozenset()
    assert spec.events_for("Lists/gov") == {"messagenew", "messageexpunge", "flagchange"}
    assert spec.events_for("Listsx") == {"messagenew", "messageexpunge", "mailboxname"}
    assert _parse(b"NONE") is None


@pytest.mark.parametrize("bad", [
    b"SET", b"SET (SELECTED (MessageNew MessageExpunge)) (SELECTED-DELAYED (MessageNew MessageExpunge))",
    b"SET (PERSONAL (FlagChange))", b"SET (SUBTREE (MessageNew MessageExpunge))", b"NONE x", b"SET (INBOXES)",
])
def test_parse_rejects(bad):
    with pytest.raises(ParseError):
        _parse(bad)


def test_parse_unsupported_event_is_badevent():
    with pytest.raises(BadEvent):
        _parse(b"SET (PERSONAL (ServerMetadataChange))")


def test_status_for_a_folder_created_after_notify(server, user):
    r, other = _session(server, user), _session(server, user)
    r.cmd(b"n1 NOTIFY SET (PERSONAL (MessageNew MessageExpunge))", b"n1")
    other.cmd(b"o1 CREATE Later", b"o1")
    _append(other, b"Later")
    got = _unasked(r, b")\r\n")
    assert re.search(rb'\* STATUS "Later" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)', got), got
    r.close()
    other.close()


def test_a_client_that_does_not_read_gets_notificationoverflow_and_no_more_notifications(server, user):
    """RFC 5465 §5.8: MessageNew's FETCHes for a client that reads nothing stop once
    imap.op.notify.OVERFLOW_BYTES wait unsent; it is told NOTIFICATIONOVERFLOW once, then is as after NOTIFY NONE."""
    import socket

    from tests.conftest import wait_until

    r, other = _session(server, user), _session(server, user)
    r.cmd(b"s1 SELECT INBOX", b"s1")
    assert b"n1 OK" in r.cmd(b"n1 NOTIFY SET (SELECTED (MessageNew (UID BODY.PEEK[]) MessageExpunge))", b"n1")
    big = MSG + b"x" * 510 * 1024 + b"\r\n"
    # r reads nothing meanwhile: the kernel's buffers (a few MB each way on loopback) fill first.
    count = 48
    for _ in range(count):
        other.send(b"ap APPEND INBOX {%d+}\r\n%s\r\n" % (len(big), big))
        assert b"ap OK" in other._tagged(b"ap")
    got = bytearray()
    r.sock.settimeout(10)

    def drained() -> bool:
        try:
            r.sock.settimeout(1)
            chunk = r.sock.recv(1 << 20)
        except socket.timeout:
            return b"NOTIFICATIONOVERFLOW" in got
        got.extend(chunk)
        return False

    wait_until(drained, timeout=60, interval=0, what="the notifications to be read")
    assert got.count(b"* OK [NOTIFICATIONOVERFLOW]") == 1
    told = len(re.findall(rb"\* \d+ FETCH \(UID \d+ BODY\[\] \{", bytes(got)))
    assert 0 < told < count, (told, count)
    # As after NOTIFY NONE: a new message is not told unasked, but by the next command.
    _append(other, b"INBOX")
    reply = r.cmd(b"z1 NOOP", b"z1")
    assert b"* %d EXISTS" % (count + 1) in reply and b"BODY[]" not in reply
    r.close()
    other.close()
