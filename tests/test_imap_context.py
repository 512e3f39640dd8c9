"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): the pure ADDTO/REMOVEFROM arithmetic
(imap/contexts.py) checked by applying its updates as a client must (§4.3.3–4.3.4), and the
updating contexts end to end over raw sockets: mail delivered over SMTP reaches an IDLE client as
an ADDTO after its EXISTS, an expunge by another session as a REMOVEFROM before its EXPUNGE,
CANCELUPDATE, tag reuse (BAD) and the NOUPDATE refusal past the limit."""

from __future__ import annotations

import random
import re

import pytest

from imap import contexts
from tests.conftest import wait_until
from tests.test_imap_e2e import deliver
from tests.test_imap_extensions import PASSWORD, Session, append


# -- pure: the updates bring the client's list to the new result --------------------------------
def _apply_sorted(old: list[int], removals, additions) -> list[int]:
    """What a client does with REMOVEFROM then ADDTO pairs (RFC 5267 §4.3.3, §4.3.4)."""
    out = list(old)
    for pos, uids in removals:
        assert out[pos - 1 : pos - 1 + len(uids)] == uids, (out, pos, uids)
        del out[pos - 1 : pos - 1 + len(uids)]
    for pos, uids in additions:
        out[pos - 1 : pos - 1] = uids
    return out


def test_sorted_changes_name_positions_that_rebuild_the_new_order():
    rng = random.Random(5267)
    for _ in range(500):
        universe = rng.sample(range(1, 60), rng.randint(0, 40))  # a sort order of 0–40 messages
        old = [u for u in universe if rng.random() < 0.5]
        new = [u for u in universe if rng.random() < 0.5]
        removals, additions = contexts.sorted_changes(old, new)
        assert _apply_sorted(old, removals, additions) == new


def test_sorted_changes_group_runs_at_consecutive_positions():
    removals, additions = contexts.sorted_changes([9, 8, 7, 6], [9, 5, 4, 6, 3])
    assert removals == [(2, [8, 7])]
    assert additions == [(2, [5, 4]), (5, [3])]


def test_search_updates_use_position_zero_and_mailbox_order():
    ctx = contexts.Context(b"B01", True, None, None, [2, 5, 9])
    lines = contexts.update_lines(ctx, [2, 3, 4, 9, 12], int)
    assert lines == [b'* ESEARCH (TAG "B01") UID REMOVEFROM (0 5)', b'* ESEARCH (TAG "B01") UID ADDTO (0 3:4,12)']
    assert ctx.result == [2, 3, 4, 9, 12]
    assert contexts.update_lines(ctx, [2, 3, 4, 9, 12], int) == []


def test_sort_updates_render_numbers_in_the_requested_order():
    ctx = contexts.Context(b"s1", False, None, ["date"], [30, 20, 10])
    msn = {10: 1, 20: 2, 25: 3, 30: 4}.__getitem__
    assert contexts.update_lines(ctx, [30, 25, 10], msn) == [
        b'* ESEARCH (TAG "s1") REMOVEFROM (2 2)', b'* ESEARCH (TAG "s1") ADDTO (2 3)',
    ]


# -- end to end --------------------------------------------------------------------------------
ESEARCH = re.compile(rb'^\* ESEARCH \(TAG "([^"]+)"\)')


@pytest.fixture(scope="module")
def account(server):
    address = f"context@{server.domain}"
    server.add_account(address, PASSWORD, name="Ngữ cảnh")
    return address


def _lines_until(s: Session, done, what: str) -> list[bytes]:
    """Read untagged lines (the client IDLEs) until ``done(lines)``."""
    got: list[bytes] = []
    s.sock.settimeout(15)
    wait_until(lambda: (got.append(s._line()) or done(got)), timeout=15, interval=0, what=what)
    return got


def test_context_capabilities_are_advertised(server, account):
    s = Session(server, account)
    caps = s.ok("CAPABILITY")[0].split()
    assert b"CONTEXT=SEARCH" in caps and b"CONTEXT=SORT" in caps and b"ESORT" in caps
    s.close()


def test_idle_client_gets_addto_after_exists_for_mail_delivered_over_smtp(server, account):
    s = Session(server, account)
    s.ok("CREATE Ctx1")
    append(s, "INBOX", "old one")
    lines = s.ok("SELECT INBOX")
    exists = int(next(x for x in lines if x.endswith(b"EXISTS")).split()[1])
    lines = s.ok('SEARCH RETURN (UPDATE COUNT) SUBJECT "Báo cáo quý"')
    tag = b"x%d" % s.n
    assert lines == [b'* ESEARCH (TAG "%s") COUNT 0' % tag]
    s.sock.sendall(b"i1 IDLE\r\n")
    assert s._line().startswith(b"+")
    deliver(server, account, subject="Báo cáo quý 3")
    got = _lines_until(s, lambda g: any(ESEARCH.match(x) for x in g), "the ADDTO of the delivered message")
    assert got.index(b"* %d EXISTS" % (exists + 1)) < got.index(b'* ESEARCH (TAG "%s") ADDTO (0 %d)' % (tag, exists + 1))
    s.sock.sendall(b"DONE\r\n")
    assert _lines_until(s, lambda g: g[-1].startswith(b"i1 "), "the end of IDLE")[-1] == b"i1 OK IDLE terminated"
    s.close()


def test_an_expunge_by_another_session_is_removed_from_the_context_before_its_expunge(server, account):
    a, b = Session(server, account), Session(server, account)
    a.ok("CREATE Ctx2")
    for subject in ("một", "hai", "ba"):
        append(a, "Ctx2", subject, "\\Flagged")
    a.ok("SELECT Ctx2")
    lines = a.ok("SORT RETURN (UPDATE ALL) (REVERSE ARRIVAL) UTF-8 FLAGGED")
    by_number = b"x%d" % a.n
    assert lines == [b'* ESEARCH (TAG "%s") ALL 3,2,1' % by_number]
    a.ok("UID SEARCH RETURN (UPDATE) FLAGGED")  # a UID context beside the sequence-number one
    by_uid = b"x%d" % a.n
    b.ok("SELECT Ctx2")
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    lines = a.ok("NOOP")
    # The SORT context names message 2 at position 2 (3,2,1) by its number before the EXPUNGE.
    assert lines.index(b'* ESEARCH (TAG "%s") REMOVEFROM (2 2)' % by_number) < lines.index(b"* 2 EXPUNGE")
    assert b'* ESEARCH (TAG "%s") UID REMOVEFROM (0 2)' % by_uid in lines
    # The sequence numbers of the context follow the expunge: message 3 is now 2, first of 2,1.
    lines = a.ok("STORE 2 -FLAGS (\\Flagged)")
    assert b'* ESEARCH (TAG "%s") REMOVEFROM (1 2)' % by_number in lines
    assert b'* ESEARCH (TAG "%s") UID REMOVEFROM (0 3)' % by_uid in lines
    a.close()
    b.close()


def test_cancelupdate_stops_updates_and_a_tag_in_use_cannot_start_another(server, account):
    s = Session(server, account)
    s.ok("CREATE Ctx3")
    append(s, "Ctx3", "x", "")
    s.ok("SELECT Ctx3")
    s.sock.sendall(b"u1 UID SEARCH RETURN (UPDATE) SEEN\r\n")
    assert s._line() == b'* ESEARCH (TAG "u1") UID'
    assert s._line().startswith(b"u1 OK")
    s.sock.sendall(b"u1 UID SEARCH RETURN (UPDATE) ALL\r\n")
    assert s._line().startswith(b"u1 BAD")  # RFC 5267 §4.3: tag reuse
    assert s.ok("STORE 1 +FLAGS (\\Seen)")[-1] == b'* ESEARCH (TAG "u1") UID ADDTO (0 1)'
    s.ok('CANCELUPDATE "u1"')
    assert not [x for x in s.ok("STORE 1 -FLAGS (\\Seen)") if ESEARCH.match(x)]
    assert s.run('CANCELUPDATE "u1"')[1].startswith(b"NO")
    assert s.run("CANCELUPDATE")[1].startswith(b"BAD")
    s.close()


def test_contexts_past_the_limit_are_refused_with_noupdate_and_still_answered(server, account):
    s = Session(server, account)
    s.ok("CREATE Ctx4")
    append(s, "Ctx4", "y", "")
    s.ok("SELECT Ctx4")
    for _ in range(contexts.MAX_CONTEXTS):
        s.ok("SEARCH RETURN (UPDATE) ALL")
    lines, status = s.run("SEARCH RETURN (UPDATE COUNT) ALL")
    tag = b"x%d" % s.n
    assert lines == [b'* NO [NOUPDATE "%s"] Too many updating contexts' % tag, b'* ESEARCH (TAG "%s") COUNT 1' % tag]
    assert status.startswith(b"OK")
    s.ok("UNSELECT")  # contexts end with the selection
    s.ok("SELECT Ctx4")
    assert s.run('CANCELUPDATE "%s"' % tag.decode())[1].startswith(b"NO")
    s.close()
