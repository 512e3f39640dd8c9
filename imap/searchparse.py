"""SEARCH keys (RFC 3501 §6.4.4, RFC 7162 MODSEQ) → the storage.search query tree.

Works on tokens of the whole command, so string arguments may be literals (non-ASCII search
needs them; Twisted's parser turned the literal into a new command). Sequence sets are turned
into UIDs through the session's view by the ``view`` callbacks.
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from typing import Callable

from storage.search import (
    All, And, BlobPrefix, BodyContains, DateCompare, HasFlag, HeaderContains, ModSeqAtLeast, Not, Or, Query,
    SizeCompare, TextContains, UidSet,
)
from storage.api import email_id_prefix

from imap.session import parse_seqset
from imap.wire import Atom, FileLiteral, ParseError, String


_OBJECTID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")  # RFC 8474 §7 objectid


class BadCharset(Exception):
    """Answered with NO [BADCHARSET (UTF-8 US-ASCII)]."""


CHARSETS = {"UTF-8", "US-ASCII", "UTF8"}
_MONTHS = {m: i for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)}
_DATE = re.compile(rb"^(\d{1,2})-([A-Za-z]{3})-(\d{4})$")

_FLAG_KEYS = {
    b"ANSWERED": ("\\Answered", True), b"DELETED": ("\\Deleted", True), b"DRAFT": ("\\Draft", True),
    b"FLAGGED": ("\\Flagged", True), b"SEEN": ("\\Seen", True), b"RECENT": ("\\Recent", True),
    b"UNANSWERED": ("\\Answered", False), b"UNDELETED": ("\\Deleted", False), b"UNDRAFT": ("\\Draft", False),
    b"UNFLAGGED": ("\\Flagged", False), b"UNSEEN": ("\\Seen", False), b"OLD": ("\\Recent", False),
}
_HEADER_KEYS = {b"BCC": "bcc", b"CC": "cc", b"FROM": "from", b"SUBJECT": "subject", b"TO": "to"}
_DATE_KEYS = {
    b"BEFORE": ("internal", "before"), b"ON": ("internal", "on"), b"SINCE": ("internal", "since"),
    b"SENTBEFORE": ("sent", "before"), b"SENTON": ("sent", "on"), b"SENTSINCE": ("sent", "since"),
}


def parse_date(tok) -> _dt.date:
    if not isinstance(tok, (Atom, String)):
        raise ParseError("Expected a date")
    m = _DATE.match(bytes(tok))
    month = _MONTHS.get(m.group(2).upper().decode()) if m else None
    if not m or not month:
        raise ParseError("Invalid date (expected d-Mon-yyyy)")
    try:
        return _dt.date(int(m.group(3)), month, int(m.group(1)))
    except ValueError:
        raise ParseError("Invalid date") from None


class SearchParser:
    def __init__(self, seqset: Callable[[tuple], UidSet], uidset: Callable[[tuple], UidSet], charset: str = "UTF-8") -> None:
        self.seqset = seqset
        self.uidset = uidset
        self.charset = charset
        self.uses_modseq = False

    def parse(self, tokens: list) -> Query:
        """Parse ``[CHARSET name] key...``; returns one query (an And of several keys)."""
        toks = list(tokens)
        if toks and isinstance(toks[0], Atom) and toks[0].upper() == b"CHARSET":
            if len(toks) < 2 or not isinstance(toks[1], (Atom, String)):
                raise ParseError("Missing charset")
            name = bytes(toks[1]).decode("ascii", "replace").upper()
            if name not in CHARSETS:
                raise BadCharset(name)
            self.charset = name
            toks = toks[2:]
        if not toks:
            raise ParseError("Missing search key")
        items = []
        pos = 0
        while pos < len(toks):
            q, pos = self._key(toks, pos)
            items.append(q)
        return items[0] if len(items) == 1 else And(tuple(items))

    def _string(self, toks: list, pos: int) -> tuple[str, int]:
        if pos >= len(toks) or not isinstance(toks[pos], (Atom, String)):
            if pos < len(toks) and isinstance(toks[pos], FileLiteral):
                raise ParseError("Search string too long")
            raise ParseError("Missing search string")
        raw = bytes(toks[pos])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("Search string is not valid UTF-8") from None
        return unicodedata.normalize("NFC", text), pos + 1

    def _number(self, toks: list, pos: int) -> tuple[int, int]:
        if pos >= len(toks) or not isinstance(toks[pos], Atom) or not toks[pos].isdigit():
            raise ParseError("Expected a number")
        return int(toks[pos]), pos + 1

    def _key(self, toks: list, pos: int) -> tuple[Query, int]:
        tok = toks[pos]
        pos += 1
        if isinstance(tok, list):
            if not tok:
                raise ParseError("Empty search list")
            sub = []
            i = 0
            while i < len(tok):
                q, i = self._key(tok, i)
                sub.append(q)
            return (sub[0] if len(sub) == 1 else And(tuple(sub))), pos
        if not isinstance(tok, Atom):
            raise ParseError("Expected a search key")
        key = tok.upper()
        if key == b"ALL":
            return All(), pos
        if key in _FLAG_KEYS:
            flag, present = _FLAG_KEYS[key]
            return HasFlag(flag, present), pos
        if key == b"NEW":
            return And((HasFlag("\\Recent"), HasFlag("\\Seen", False))), pos
        if key in (b"KEYWORD", b"UNKEYWORD"):
            if pos >= len(toks) or not isinstance(toks[pos], Atom):
                raise ParseError("Expected a keyword")
            return HasFlag(bytes(toks[pos]).decode("ascii", "replace"), key == b"KEYWORD"), pos + 1
        if key in _HEADER_KEYS:
            text, pos = self._string(toks, pos)
            return HeaderContains(_HEADER_KEYS[key], text), pos
        if key == b"HEADER":
            name, pos = self._string(toks, pos)
            text, pos = self._string(toks, pos)
            return HeaderContains(name.lower(), text), pos
        if key == b"BODY":
            text, pos = self._string(toks, pos)
            return BodyContains(text), pos
        if key == b"TEXT":
            text, pos = self._string(toks, pos)
            return TextContains(text), pos
        if key in _DATE_KEYS:
            if pos >= len(toks):
                raise ParseError("Missing date")
            field, op = _DATE_KEYS[key]
            return DateCompare(field, op, parse_date(toks[pos])), pos + 1
        if key in (b"LARGER", b"SMALLER"):
            n, pos = self._number(toks, pos)
            return SizeCompare(key.decode().lower(), n), pos
        if key == b"NOT":
            if pos >= len(toks):
                raise ParseError("NOT needs a search key")
            q, pos = self._key(toks, pos)
            return Not(q), pos
        if key == b"OR":
            if pos + 1 >= len(toks):
                raise ParseError("OR needs two search keys")
            a, pos = self._key(toks, pos)
            if pos >= len(toks):
                raise ParseError("OR needs two search keys")
            b, pos = self._key(toks, pos)
            return Or(a, b), pos
        if key == b"UID":
            if pos >= len(toks) or not isinstance(toks[pos], Atom):
                raise ParseError("UID needs a set")
            return self.uidset(parse_seqset(bytes(toks[pos]))), pos + 1
        if key in (b"EMAILID", b"THREADID"):  # RFC 8474 §6
            value, pos = self._string(toks, pos)
            if not _OBJECTID.match(value):
                raise ParseError("Invalid object id")
            prefix = email_id_prefix(value) if key == b"EMAILID" else None
            return (BlobPrefix(prefix) if prefix is not None else UidSet(())), pos
        if key == b"MODSEQ":
            # MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162 §3.1.5)
            if pos < len(toks) and isinstance(toks[pos], String):
                pos += 2
            n, pos = self._number(toks, pos)
            self.uses_modseq = True
            return ModSeqAtLeast(n), pos
        if key[:1].isdigit() or key[:1] == b"*" or key == b"$":  # $: SEARCHRES (RFC 5182)
            return self.seqset(parse_seqset(bytes(key))), pos
        raise ParseError("Unknown search key: " + key.decode("ascii", "replace")[:30])
