"""Tokenizer and FETCH-item grammar: what RFC 3501 §9 allows parses, what it refuses is BAD."""

from __future__ import annotations

import pytest

from imap.fetchparse import parse_one
from imap.wire import Atom, Command, ParseError, String, tokenize


def cmd(line: bytes) -> Command:
    c = Command()
    c.segments = [line]
    return c


@pytest.mark.parametrize(
    "line, expected",
    [
        (b"a SELECT a[b", [Atom(b"a"), Atom(b"SELECT"), Atom(b"a[b")]),
        (b"a CREATE x[1]", [Atom(b"a"), Atom(b"CREATE"), Atom(b"x[1]")]),
        (b'a CREATE "x[1]"', [Atom(b"a"), Atom(b"CREATE"), String(b"x[1]")]),
        (b'a LIST "" a[*', [Atom(b"a"), Atom(b"LIST"), String(b""), Atom(b"a[*")]),
        (b"a CREATE x]", [Atom(b"a"), Atom(b"CREATE"), Atom(b"x]")]),
        (b"a SELECT a[b c", [Atom(b"a"), Atom(b"SELECT"), Atom(b"a[b"), Atom(b"c")]),
        (
            b'a FETCH 1 BODY.PEEK[HEADER.FIELDS ("Subject" From)]',
            [Atom(b"a"), Atom(b"FETCH"), Atom(b"1"), Atom(b'BODY.PEEK[HEADER.FIELDS ("Subject" From)]')],
        ),
        (b"a FETCH 1 (BODY[] FLAGS)", [Atom(b"a"), Atom(b"FETCH"), Atom(b"1"), [Atom(b"BODY[]"), Atom(b"FLAGS")]]),
    ],
)
def test_brackets_are_atom_chars_and_sections_still_parse(line, expected):
    toks = tokenize(cmd(line))
    assert toks == expected
    assert [type(t) for t in toks] == [type(t) for t in expected]


@pytest.mark.parametrize(
    "line",
    [
        b'a SEARCH SUBJECT "a\x00b"',
        b'a CREATE "nul\x00name"',
        b'a FETCH 1 BODY.PEEK[HEADER.FIELDS ("SUBJECT)]',
        b'a FETCH 1 (BODY.PEEK[HEADER.FIELDS ("SUBJECT)])',
    ],
)
def test_tokenizer_refuses(line):
    with pytest.raises(ParseError):
        tokenize(cmd(line))


@pytest.mark.parametrize(
    "att",
    [
        b"BODY.PEEK[]<0.99999999999999999999>",
        b"BODY.PEEK[]<4294967296.10>",
        b"BODY.PEEK[]<0.4294967296>",
        b"BODY[4294967296]",
        b"BODY[1.99999999999999999999.TEXT]",
    ],
)
def test_numbers_above_32_bits_are_refused(att):
    with pytest.raises(ParseError):
        parse_one(att)


def test_numbers_up_to_32_bits_parse():
    assert parse_one(b"BODY.PEEK[]<4294967295.4294967295>").partial == (4294967295, 4294967295)
    assert parse_one(b"BODY[4294967295]").part == (4294967295,)
