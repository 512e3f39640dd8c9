"""Unit tests of the pure parts of imap/: wire syntax, modified UTF-7, sequence sets, the
session view's update rules, ENVELOPE/BODYSTRUCTURE rendering, FETCH sections, SEARCH parsing."""

from __future__ import annotations

import datetime as _dt

import pytest

from imap import mutf7
from imap.bodystructure import render_body
from imap.envelope import render_envelope
from imap.fetchparse import FetchItem, parse_fetch_atts, parse_one
from imap.searchparse import BadCharset, SearchParser
from imap.sections import NoSuchPart, filter_fields, section_range
from imap.session import SelectedView, format_set, parse_seqset
from imap.wire import Atom, Command, LiteralString, ParseError, String, astring, literal_marker, tokenize
from storage.api import Changes, Folder, FolderView, MessageInfo
from storage.mime import parse as mime_parse
from storage.search import All, And, BodyContains, DateCompare, HasFlag, HeaderContains, Not, Or, SizeCompare, UidSet


def cmd(*segments, literals=()):
    c = Command()
    c.segments = list(segments)
    c.literals = list(literals)
    return c


# -- wire ----------------------------------------------------------------------------------------

def test_tokenize_quoted_string_honours_escapes():
    toks = tokenize(cmd(rb'a LOGIN "al\"ice" "p\\w"'))
    assert toks == [b"a", b"LOGIN", b'al"ice', b"p\\w"]
    assert isinstance(toks[2], String) and isinstance(toks[0], Atom)


def test_tokenize_keeps_fetch_section_with_spaces_as_one_atom():
    toks = tokenize(cmd(b"a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.10>)"))
    assert toks[3] == [b"FLAGS", b"BODY.PEEK[HEADER.FIELDS (From To)]<0.10>"]


def test_tokenize_literal_inside_a_list():
    toks = tokenize(cmd(b"a SEARCH CHARSET UTF-8 (SUBJECT {4}", b")", literals=["văn".encode()]))
    assert toks[2:] == [b"CHARSET", b"UTF-8", [b"SUBJECT", "văn".encode()]]
    assert isinstance(toks[4][1], LiteralString)


@pytest.mark.parametrize("bad", [b'a LOGIN "unterminated', b"a X (unbalanced", b"a X )", b'a LOGIN "bad\\q"'])
def test_tokenize_rejects_malformed_input(bad):
    with pytest.raises(ParseError):
        tokenize(cmd(bad))


def test_literal_marker_recognises_synchronizing_and_literal_plus():
    assert literal_marker(b"a APPEND INBOX {310}") == (310, False)
    assert literal_marker(b"a APPEND INBOX {310+}") == (310, True)
    assert literal_marker(b"a LOGIN x y") is None


def test_astring_quotes_ascii_and_sends_8bit_as_literal():
    assert astring("a \"b\"") == b'"a \\"b\\""'
    assert astring("Công văn") == b"{%d}\r\n" % len("Công văn".encode()) + "Công văn".encode()
    assert astring("line\r\nbreak").startswith(b"{11}\r\n")
    assert astring(None) == b"NIL"


# -- modified UTF-7 ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, wire", [
    ("INBOX", b"INBOX"), ("a&b", b"a&-b"), ("Thư mục", b"Th&AbA- m&HuU-c"),
    ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
])
def test_mutf7_round_trip(name, wire):
    assert mutf7.encode(name) == wire
    assert mutf7.decode(wire) == name


@pytest.mark.parametrize("wire", [b"&AGE-", b"&Jjo", b"&Jj!-"])
def test_mutf7_refuses_non_canonical_or_broken_names(wire):
    with pytest.raises(mutf7.MUTF7Error):
        mutf7.decode(wire)


def test_mutf7_decode_normalises_to_nfc():
    assert mutf7.decode("Thu\u031b".encode()) == "Thư"


# -- sequence sets and the session view ----------------------------------------------------------

def test_parse_seqset_ranges_and_star():
    assert parse_seqset(b"1:4,7,9:*") == ((1, 4), (7, 7), (9, None))
    assert parse_seqset(b"*:3") == ((3, None),)
    for bad in (b"", b"0", b"1:", b"a", b"1,,2", b"01"):
        with pytest.raises(ParseError):
            parse_seqset(bad)


def _view(uids, recent=()):
    folder = Folder(id=1, account_id=1, name="INBOX", special_use=None, subscribed=True, uidvalidity=7, uidnext=max(uids, default=0) + 1, highestmodseq=10)
    return SelectedView(FolderView(folder=folder, uids=uids, recent_uids=frozenset(recent), unseen=0, first_unseen_uid=None), readonly=False)


def _info(uid, flags=(), modseq=11):
    return MessageInfo(uid=uid, modseq=modseq, flags=frozenset(flags), internaldate=_dt.datetime.now(_dt.UTC), size=1, blob="x")


def test_view_resolves_msn_and_uid_sets():
    v = _view([3, 5, 9, 12])
    assert v.resolve(parse_seqset(b"2:3"), uid=False) == [5, 9]
    assert v.resolve(parse_seqset(b"*"), uid=False) == [12]
    assert v.resolve(parse_seqset(b"4:10"), uid=True) == [5, 9]
    assert v.resolve(parse_seqset(b"100:*"), uid=True) == [12]  # n:* always includes the last UID
    with pytest.raises(ParseError):
        v.resolve(parse_seqset(b"5"), uid=False)


def test_expunge_held_back_until_allowed_then_reported_in_order():
    v = _view([1, 2, 3, 4])
    v.apply(Changes(highestmodseq=12, uidnext=6, new=[_info(5)], updated=[], expunged=[2, 4]))
    assert v.take_claim() == (5, 6) and v.take_claim() is None  # the arrival is claimed once
    v.claimed(5, 6)  # and this session got it first: \Recent here
    assert v.flush(allow_expunge=False) == [b"* 5 EXISTS", b"* 1 RECENT"]
    assert v.msn_of(3) == 3  # numbers unchanged while the expunges wait
    assert v.flush(allow_expunge=True) == [b"* 2 EXPUNGE", b"* 3 EXPUNGE"]
    assert list(v.uids) == [1, 3, 5] and v.msn_of(5) == 3


def test_arrival_claimed_by_another_session_is_not_recent_here():
    v = _view([1, 2])
    v.apply(Changes(highestmodseq=12, uidnext=5, new=[_info(3), _info(4)], updated=[], expunged=[]))
    v.claimed(*[5, 5])  # the store's floor was already at 5: another session took both
    assert v.flush(allow_expunge=False) == [b"* 4 EXISTS"]
    v.apply(Changes(highestmodseq=13, uidnext=6, new=[_info(5)], updated=[], expunged=[]))
    assert v.take_claim() == (5, 6)
    v.claimed(5, 6)
    assert v.recent == {5}


def test_flag_changes_of_others_become_untagged_fetch_but_own_are_not_echoed():
    v = _view([1, 2])
    v.note_own_flags(1, 15)
    v.apply(Changes(highestmodseq=16, uidnext=3, new=[], updated=[_info(1, ["\\Seen"], 15), _info(2, ["\\Flagged"], 16)], expunged=[]))
    assert v.flush(allow_expunge=False) == [b"* 2 FETCH (UID 2 FLAGS (\\Flagged))"]


def test_format_set_compresses_runs():
    assert format_set([1, 2, 3, 5, 7, 8]) == b"1:3,5,7:8"


# -- ENVELOPE / BODYSTRUCTURE --------------------------------------------------------------------

def test_envelope_with_group_and_missing_fields():
    env = {"date": None, "subject": "Hi", "in_reply_to": None, "message_id": "<1@x>",
           "from": [{"name": "An", "adl": None, "mailbox": "an", "host": "x.vn"}],
           "to": [{"name": None, "adl": None, "mailbox": "undisclosed-recipients", "host": None},
                  {"name": None, "adl": None, "mailbox": None, "host": None}],
           "cc": [], "bcc": [], "sender": [], "reply_to": []}
    out = render_envelope(env)
    assert out == (b'(NIL "Hi" (("An" NIL "an" "x.vn")) (("An" NIL "an" "x.vn")) (("An" NIL "an" "x.vn")) '
                   b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL NIL NIL "<1@x>")')
    assert render_envelope(None) == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_bodystructure_defaults_for_message_without_content_type():
    part = {"type": "text", "subtype": "plain", "params": [], "size": 7, "lines": 1}
    assert render_body(part, True) == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 7 1 NIL NIL NIL NIL)'
    assert render_body(part, False) == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 7 1)'
    meta = mime_parse(b"Subject: x\r\n\r\nhello\r\n")
    assert render_body(meta["structure"], False).upper() == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 7 1)'


def test_bodystructure_multipart_keeps_parameter_values_and_disposition():
    part = {"type": "multipart", "subtype": "mixed", "params": [["boundary", "AbC"]], "parts": [
        {"type": "text", "subtype": "plain", "params": [["charset", "utf-8"]], "id": None, "description": None,
         "encoding": "quoted-printable", "md5": None, "disposition": None, "language": None, "location": None, "size": 10, "lines": 2},
        {"type": "application", "subtype": "pdf", "params": [["name", "Công văn.pdf"]], "id": None, "description": None,
         "encoding": "base64", "md5": None, "disposition": ["attachment", [["filename", "My File.PDF"]]], "language": ["vi"], "location": None, "size": 4},
    ], "disposition": None, "language": None, "location": None}
    out = render_body(part, True)
    assert out.startswith(b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 10 2 NIL NIL NIL NIL)')
    assert b'("ATTACHMENT" ("FILENAME" "My File.PDF")) "vi" NIL)' in out
    assert "Công văn.pdf".encode() in out and b'"MIXED" ("BOUNDARY" "AbC") NIL NIL NIL)' in out


def test_bodystructure_of_message_rfc822_part_nests_envelope_and_body():
    meta = mime_parse(MULTI)
    out = render_body(meta["structure"], True)
    assert b'"MESSAGE" "RFC822" NIL NIL NIL "7BIT"' in out
    assert b'(NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL)' in out


# -- FETCH items and sections --------------------------------------------------------------------

MULTI = (b"From: a@b\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
         b"pre\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\n"
         b"Subject: inner\r\nX-A: 1\r\n\r\ninner body\r\n--XX--\r\n")


def _slice(spec: bytes, msg: bytes = MULTI) -> bytes:
    item = parse_one(b"BODY[" + spec + b"]")
    start, end = section_range(mime_parse(msg)["structure"], len(msg), item)
    return msg[start:end]


def test_sections_are_exact_slices_of_the_stored_bytes():
    assert _slice(b"") == MULTI
    assert _slice(b"HEADER").endswith(b"boundary=XX\r\n\r\n") and _slice(b"HEADER").startswith(b"From: a@b")
    assert _slice(b"1") == b"hello"
    assert _slice(b"1.MIME") == b"Content-Type: text/plain\r\n\r\n"
    assert _slice(b"2.HEADER") == b"Subject: inner\r\nX-A: 1\r\n\r\n"
    assert _slice(b"2.TEXT") == b"inner body"
    assert _slice(b"2.1") == b"inner body"
    with pytest.raises(NoSuchPart):
        _slice(b"3")
    assert _slice(b"1.1") == b"hello"  # a non-multipart part is its own part 1 (RFC 3501 §6.4.5)
    with pytest.raises(NoSuchPart):
        _slice(b"1.2")


def test_single_part_message_body_is_part_one():
    msg = b"Subject: x\r\n\r\nbody\r\n"
    assert _slice(b"1", msg) == b"body\r\n"
    assert _slice(b"TEXT", msg) == b"body\r\n"


def test_header_fields_filter_keeps_duplicates_and_folding_byte_exact():
    header = b"Received: a\r\n  folded\r\nSubject: s\r\nReceived: b\r\nmessage-id: <x>\r\n\r\n"
    assert filter_fields(header, (b"RECEIVED",), True) == b"Received: a\r\n  folded\r\nReceived: b\r\n\r\n"
    assert filter_fields(header, (b"RECEIVED", b"SUBJECT"), False) == b"message-id: <x>\r\n\r\n"


def test_fetch_item_labels():
    assert parse_one(b"BODY.PEEK[]<0.10>").label() == b"BODY[]<0>"
    assert parse_one(b"body[header.fields (from to)]").label() == b"BODY[HEADER.FIELDS (FROM TO)]"
    assert parse_one(b"BODY[1.2.MIME]").label() == b"BODY[1.2.MIME]"
    assert [i.name for i in parse_fetch_atts(Atom(b"FAST"))] == [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"]
    for bad in (b"BODY[0]", b"BODY[MIME]", b"BODY[HEADER.FIELDS]", b"FOO", b"BODY[]<1>"):
        with pytest.raises(ParseError):
            parse_one(bad)


# -- SEARCH --------------------------------------------------------------------------------------

def _parser():
    return SearchParser(lambda r: ("msn", r), lambda r: UidSet(r))


def test_search_keys_parse_into_the_storage_tree():
    q = _parser().parse(tokenize(cmd(b'a SEARCH CHARSET UTF-8 OR FROM an NOT SEEN SINCE 1-Feb-2024 LARGER 100 (BODY "x")'))[2:])
    assert q == And((
        Or(HeaderContains("from", "an"), Not(HasFlag("\\Seen"))),
        DateCompare("internal", "since", _dt.date(2024, 2, 1)),
        SizeCompare("larger", 100),
        BodyContains("x"),
    ))


def test_search_literal_string_is_nfc_text():
    q = _parser().parse([Atom(b"SUBJECT"), LiteralString("văn".encode())])
    assert q == HeaderContains("subject", "văn")


def test_search_uid_and_sequence_sets_go_through_the_view():
    q = _parser().parse([Atom(b"UID"), Atom(b"1:5"), Atom(b"2,4")])
    assert q == And((UidSet(((1, 5),)), ("msn", ((2, 2), (4, 4)))))


def test_search_unknown_charset_and_bad_keys():
    with pytest.raises(BadCharset):
        _parser().parse([Atom(b"CHARSET"), Atom(b"KOI8-R"), Atom(b"ALL")])
    for toks in ([Atom(b"FOO")], [Atom(b"SINCE"), Atom(b"31-Foo-2020")], [Atom(b"OR"), Atom(b"ALL")], []):
        with pytest.raises(ParseError):
            _parser().parse(toks)
    assert _parser().parse([Atom(b"ALL")]) == All()


def test_utf8_astring_quotes_vietnamese_and_escapes():
    from imap.wire import utf8_astring

    assert utf8_astring("Công văn đến") == '"Công văn đến"'.encode()
    assert utf8_astring('a"b\\c') == b'"a\\"b\\\\c"'
    assert utf8_astring("dòng\r\nhai") == b"{10}\r\n" + "dòng\r\nhai".encode()


def test_decode_mailbox_takes_both_forms_and_utf8_only_names_after_enable():
    from imap.args import decode_mailbox
    from imap.errors import Refused

    assert decode_mailbox(b"C&APQ-ng v&AQM-n", False) == decode_mailbox("Công văn".encode(), True) == "Công văn"
    assert decode_mailbox(b"R&D", True) == "R&D"
    with pytest.raises(ParseError):
        decode_mailbox(b"R&D", False)
    with pytest.raises(Refused):  # RFC 6855 §3: 8-bit names only after ENABLE UTF8=ACCEPT
        decode_mailbox("Công văn".encode(), False)


def test_own_store_does_not_drop_a_newer_change_of_another_session():
    """Found by tests/test_imap_stress.py: another session's change committed after this
    session's STORE but heard of before its answer came back was dropped with the older one."""
    v = _view([1, 2])
    v.apply(Changes(highestmodseq=16, uidnext=3, new=[], updated=[_info(1, ["\\Seen", "$Work"], 16)], expunged=[]))
    v.note_own_flags(1, 15)  # this session's STORE committed at 15, before the change at 16
    assert v.flush(allow_expunge=False)[-1:] == [b"* 1 FETCH (UID 1 FLAGS ($Work \\Seen))"]
    v.apply(Changes(highestmodseq=17, uidnext=3, new=[], updated=[_info(2, ["\\Seen"], 16)], expunged=[]))
    v.note_own_flags(2, 17)  # an older change is covered by this session's newer answer
    assert v.flush(allow_expunge=False) == []


def test_fetch_announces_a_keyword_the_client_was_not_told_before_showing_it():
    """Found by tests/test_imap_stress.py: a FETCH reads the flags as committed, which may carry
    a keyword another session set after this session last told FLAGS (RFC 3501 §7.2.6)."""
    from imap.fetchrender import FlagText, Numbering, render_simple
    from imap.session import MailboxFlags
    from storage.api import ROW_FLAGS, ROW_UID

    def row(uid, flags):
        r = [None] * (max(ROW_FLAGS, ROW_UID) + 1)
        r[ROW_UID], r[ROW_FLAGS] = uid, frozenset(flags)
        return tuple(r)

    mailbox = MailboxFlags({"$work": "$Work"}, b"\\Seen \\*")
    flag_text = FlagText(set(), mailbox)
    out = render_simple([row(1, ["$Work"]), row(2, ["Urgent"]), row(3, ["urgent"])],
                        b"* %d FETCH (FLAGS (%s))\r\n", [flag_text], Numbering([1, 2, 3]), None, flag_text)
    assert out.split(b"\r\n")[:5] == [
        b"* 1 FETCH (FLAGS ($Work))",
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work Urgent)",
        b"* OK [PERMANENTFLAGS ($Work Urgent \\Seen \\*)] Flags permitted",
        b"* 2 FETCH (FLAGS (Urgent))",
        b"* 3 FETCH (FLAGS (urgent))",
    ]
    assert mailbox.keywords == {"$work": "$Work", "urgent": "Urgent"}


def test_render_simple_numbers_rows_by_the_view_skipping_unknown_and_unchanged_ones():
    """The fast path of render_simple (the next row is the view's next UID) and its fallback:
    a row not in the view is left out, a gap in the rows is numbered by the view, CHANGEDSINCE
    drops rows at or below the mod-sequence; one, two and three items per line."""
    from imap.fetchrender import Numbering, render_simple
    from storage.api import ROW_FLAGS, ROW_MODSEQ, ROW_SIZE, ROW_UID

    def row(uid, modseq):
        r = [None] * (max(ROW_FLAGS, ROW_UID, ROW_MODSEQ, ROW_SIZE) + 1)
        r[ROW_UID], r[ROW_MODSEQ], r[ROW_SIZE], r[ROW_FLAGS] = uid, modseq, uid * 10, frozenset()
        return tuple(r)

    rows = [row(2, 5), row(4, 9), row(5, 1), row(9, 7), row(12, 8)]
    view = [1, 2, 4, 5, 7, 9, 10]  # 12 is not in the view (not told EXISTS yet)
    uid = lambda r: r[ROW_UID]  # noqa: E731
    size = lambda r: r[ROW_SIZE]  # noqa: E731
    modseq = lambda r: r[ROW_MODSEQ]  # noqa: E731
    one = render_simple(rows, b"%d:%d;", [uid], Numbering(view), None)
    assert one == b"2:2;3:4;4:5;6:9;"
    two = render_simple(rows, b"%d:%d:%d;", [uid, size], Numbering(view), 6)
    assert two == b"3:4:40;6:9:90;"
    three = render_simple(rows, b"%d:%d:%d:%d;", [uid, size, modseq], Numbering(view), None)
    assert three == b"2:2:20:5;3:4:40:9;4:5:50:1;6:9:90:7;"
    numbering = Numbering(view)  # batches continue where the last one ended
    assert render_simple(rows[:2], b"%d:%d;", [uid], numbering, None) + render_simple(rows[2:], b"%d:%d;", [uid], numbering, None) == one
