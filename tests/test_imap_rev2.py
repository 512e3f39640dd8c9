"""IMAP4rev2 (RFC 9051) beside IMAP4rev1 over real sessions: after ENABLE IMAP4rev2 there is no
\\Recent anywhere, SEARCH answers ESEARCH, SELECT sends a LIST response, mailbox names are UTF-8,
STATUS has DELETED and not RECENT; a session that did not enable it keeps the rev1 rules."""

from __future__ import annotations

import imaplib
import unicodedata

import pytest

from imap.op.search import mentions_recent, saved_result
from imap.searchparse import SearchParser
from imap.session import SAVED, parse_seqset
from imap.wire import Atom, ParseError
from storage.search import UidSet
from tests.test_imap_e2e import deliver
from tests.test_imap_extensions import Session, append
from tests.test_imap_units import _view

PASSWORD = "Ext-pass-2024"


# -- pure parts ------------------------------------------------------------------------------------

def test_saved_result_keeps_all_or_only_min_max():
    assert saved_result([3, 5, 9], {b"SAVE"}) == [3, 5, 9]
    assert saved_result([3, 5, 9], {b"SAVE", b"MIN"}) == [3]
    assert saved_result([3, 5, 9], {b"SAVE", b"MIN", b"MAX"}) == [3, 9]
    assert saved_result([3, 5, 9], {b"SAVE", b"MAX", b"COUNT"}) == [3, 5, 9]
    assert saved_result([], {b"SAVE", b"MIN"}) == []


def test_dollar_names_the_saved_uids_by_number_and_by_uid():
    assert parse_seqset(b"$") is SAVED
    with pytest.raises(ParseError):
        parse_seqset(b"$", saved=False)
    with pytest.raises(ParseError):
        parse_seqset(b"1,$")
    v = _view([3, 5, 9, 12])
    v.saved = [5, 12, 40]  # 40 is not in the view
    assert v.resolve(SAVED, uid=False) == v.resolve(SAVED, uid=True) == [5, 12]
    assert v.uid_set(SAVED, uid=False) == v.uid_set(SAVED, uid=True) == UidSet(((5, 5), (12, 12)))


def test_recent_keys_are_recognised_anywhere_in_a_search():
    parser = SearchParser(lambda r: UidSet(()), lambda r: UidSet(()))
    for keys, uses in (([b"RECENT"], True), ([b"NOT", b"NEW"], True), ([b"OR", b"SEEN", [b"OLD"]], True),
                       ([b"SEEN", b"FLAGGED"], False), ([b"KEYWORD", b"Recent"], False)):
        assert mentions_recent(parser.parse([Atom(k) if isinstance(k, bytes) else [Atom(x) for x in k]
                                             for k in keys])) is uses, keys


@pytest.fixture(scope="module")
def box(server):
    address = f"rev2@{server.domain}"
    server.add_account(address, PASSWORD, name="Phạm Thị Dung")
    s = Session(server, address)
    for subject, flags in (("một", ""), ("hai", "\\Seen \\Deleted"), ("ba", "\\Flagged")):
        append(s, "INBOX", subject, flags)
    s.ok('CREATE "L&AbA-u tr&Hu8-/2024"')  # "Lưu trữ/2024" in modified UTF-7 (rev1)
    s.close()
    return address


def rev2(server, address) -> Session:
    s = Session(server, address)
    assert s.ok("ENABLE IMAP4rev2") == [b"* ENABLED IMAP4rev2"]
    return s


def test_both_revisions_are_advertised_and_imaplib_talks_rev2(server, box):
    s = Session(server)
    caps = s.ok("CAPABILITY")[0].split()
    assert caps[2:4] == [b"IMAP4rev1", b"IMAP4rev2"]
    s.close()
    with imaplib.IMAP4(server.host, server.port("imap")) as m:
        assert "IMAP4REV2" in m.capabilities
        m.login(box, PASSWORD)
        typ, _ = m.enable("IMAP4rev2")
        assert typ == "OK" and m.untagged_responses.pop("ENABLED") == [b"IMAP4rev2"]
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"3"]
        assert "RECENT" not in m.untagged_responses and "UNSEEN" not in m.untagged_responses
        assert m.untagged_responses["LIST"] == [b'(\\HasNoChildren) "/" "INBOX"']


def test_no_recent_anywhere_after_enable(server, box):
    s = rev2(server, box)
    lines = s.ok("SELECT INBOX")
    assert not [line for line in lines if b"RECENT" in line or b"[UNSEEN" in line], lines
    assert b'* LIST (\\HasNoChildren) "/" "INBOX"' in lines
    deliver(server, box, subject="mới")
    lines = s.ok("NOOP")
    assert b"* 4 EXISTS" in lines and not [line for line in lines if b"RECENT" in line], lines
    assert b"\\Recent" not in b"".join(s.ok("FETCH 1:* (FLAGS)"))
    for key in ("RECENT", "NEW", "OLD", "NOT RECENT", "OR SEEN NEW"):
        _, status = s.run(f"SEARCH {key}")
        assert status.startswith(b"BAD"), (key, status)
    _, status = s.run("STATUS INBOX (RECENT)")
    assert status.startswith(b"BAD"), status
    _, status = s.run('LIST "" "INBOX" RETURN (STATUS (RECENT))')
    assert status.startswith(b"BAD"), status
    s.close()
    old = Session(server, box)  # a rev1 session alongside still has \Recent and RECENT
    assert any(line.endswith(b" RECENT") for line in old.ok("EXAMINE INBOX"))
    assert old.run("SEARCH RECENT")[1].startswith(b"OK")
    old.close()


def test_enable_while_selected_drops_recent(server, box):
    s = Session(server, box)
    s.ok("SELECT INBOX")
    s.ok("ENABLE IMAP4rev2")
    deliver(server, box, subject="nữa")
    lines = s.ok("NOOP")
    assert not [line for line in lines if b"RECENT" in line], lines
    assert b"\\Recent" not in b"".join(s.ok("FETCH 1:* (FLAGS)"))
    s.close()


def test_search_answers_esearch(server, box):
    s = rev2(server, box)
    s.ok("SELECT INBOX")
    assert s.ok("SEARCH FLAGGED") == [b'* ESEARCH (TAG "x4") ALL 3']
    assert s.ok("UID SEARCH SUBJECT hai") == [b'* ESEARCH (TAG "x5") UID ALL 2']
    assert s.ok("SEARCH SUBJECT không-có") == [b'* ESEARCH (TAG "x6")']
    assert s.ok("SEARCH RETURN (COUNT) 1:3") == [b'* ESEARCH (TAG "x7") COUNT 3']
    s.close()


def test_status_deleted_and_size(server, box):
    s = rev2(server, box)
    line = s.ok("STATUS INBOX (MESSAGES DELETED SIZE)")[0]
    assert line.startswith(b'* STATUS "INBOX" (MESSAGES ') and b" DELETED 1 SIZE " in line, line
    lines = s.ok('LIST "" "INBOX" RETURN (STATUS (DELETED))')
    assert lines == [b'* LIST (\\HasNoChildren) "/" "INBOX"', b'* STATUS "INBOX" (DELETED 1)']
    s.close()


def test_mailbox_names_are_utf8_and_missing_parents_nonexistent(server, box):
    s = rev2(server, box)
    lines = s.ok('LIST "" "%"')
    assert '* LIST (\\NonExistent \\HasChildren) "/" "Lưu trữ"'.encode() in lines, lines
    s.ok('CREATE "Công văn"')
    assert '* LIST (\\HasNoChildren) "/" "Công văn"'.encode() in s.ok('LIST "" "Công*"')
    lines = s.ok('SELECT "Lưu trữ/2024"')
    assert '* LIST (\\HasNoChildren) "/" "Lưu trữ/2024"'.encode() in lines
    nfd = unicodedata.normalize("NFD", "Lưu trữ/2024")  # opens the same folder, told with OLDNAME
    lines = s.ok(f'EXAMINE "{nfd}"')
    assert f'* LIST (\\HasNoChildren) "/" "Lưu trữ/2024" ("OLDNAME" ("{nfd}"))'.encode() in lines, lines
    s.close()
    old = Session(server, box)  # rev1: modified UTF-7 and \Noselect
    lines = old.ok('LIST "" "%"')
    assert b'* LIST (\\Noselect \\HasChildren) "/" "L&AbA-u tr&Hu8-"' in lines
    assert b'* LIST (\\HasNoChildren) "/" "C&APQ-ng v&AQM-n"' in lines
    old.close()


def test_searchres_saves_a_result_for_later_commands(server, box):
    """SEARCHRES (RFC 5182, part of IMAP4rev2): ``$`` names what SEARCH RETURN (SAVE) kept."""
    s = Session(server, box)  # SEARCHRES works in rev1 sessions too
    assert b"SEARCHRES" in s.ok("CAPABILITY")[0].split()
    s.ok('CREATE "Searchres"')
    for subject, flags in (("a", "\\Flagged"), ("b", ""), ("c", "\\Flagged"), ("d", "")):
        append(s, "Searchres", subject, flags)
    s.ok('SELECT "Searchres"')
    s.ok('SELECT "Searchres"')  # the first SELECT took \Recent
    assert s.ok("SEARCH RETURN (SAVE) FLAGGED") == []  # SAVE alone: no ESEARCH
    assert s.ok("FETCH $ (FLAGS)") == [b"* 1 FETCH (FLAGS (\\Flagged))", b"* 3 FETCH (FLAGS (\\Flagged))"]
    assert s.ok("UID FETCH $ (FLAGS)") == [b"* 1 FETCH (UID 1 FLAGS (\\Flagged))", b"* 3 FETCH (UID 3 FLAGS (\\Flagged))"]
    assert s.ok("SEARCH $ SEEN") == [b"* SEARCH"]
    s.ok("STORE $ +FLAGS.SILENT (\\Seen)")
    assert s.ok("SEARCH SEEN") == [b"* SEARCH 1 3"]
    lines = s.ok("SEARCH RETURN (SAVE MAX COUNT) NOT FLAGGED")  # with COUNT: all of them are kept
    assert lines == [b'* ESEARCH (TAG "x%d") MAX 4 COUNT 2' % s.n]
    assert s.ok("UID SEARCH UID $") == [b"* SEARCH 2 4"]
    s.ok("SEARCH RETURN (SAVE MAX) ALL")  # MAX alone: only the highest
    assert s.ok("SEARCH $") == [b"* SEARCH 4"]
    s.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    s.ok("SEARCH RETURN (SAVE) DELETED")
    s.ok("EXPUNGE")
    assert s.ok("SEARCH $") == [b"* SEARCH"]  # an expunged message leaves $
    _, status = s.run("SEARCH RETURN (SAVE) NOSUCHKEY")
    assert status.startswith(b"BAD"), status
    s.ok("SEARCH RETURN (SAVE) ALL")
    s.ok('EXAMINE "Searchres"')  # a new selection starts with $ empty
    assert s.ok("FETCH $ (UID)") == []
    s.ok("ENABLE QRESYNC")
    _, status = s.run('SELECT "Searchres" (QRESYNC (1 1 $))')
    assert status.startswith(b"BAD"), status
    s.close()
