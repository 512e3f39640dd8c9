"""Argument parsers of the command table (imap/commands.py): ``arg_x(s, tokens) -> (value, rest)``.

``s`` is the Session (imap/state.py: mailbox names depend on UTF8=ACCEPT). Same idea as Twisted's
``arg_*`` parsers, but over the tokens of a whole command, so literals can appear anywhere and
quoted strings honour escapes.
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata

from imap import mutf7
from imap.fetchparse import parse_fetch_atts
from imap.session import parse_seqset
from imap.state import Session
from imap.errors import Refused
from imap.wire import Atom, LiteralString, ParseError, String

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DATETIME = re.compile(rb"^([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$")
_SYSTEM_FLAGS = {f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")}
_FLAG_ATOM = re.compile(rb"^\\?[!#$&'+\-.0-9:;<=>?@A-Z^_`a-z|~]+$")


def _first(tokens: list, what: str):
    if not tokens:
        raise ParseError("Missing " + what)
    return tokens[0], tokens[1:]


def normalize_mailbox(name: str) -> str:
    """INBOX is case-insensitive (RFC 3501 §5.1), including as the parent of a hierarchy."""
    if name.upper() == "INBOX":
        return "INBOX"
    if name[:6].upper() == "INBOX/":
        return "INBOX/" + name[6:]
    return name


def decode_mailbox(raw: bytes, utf8: bool) -> str:
    """A mailbox name from the client → NFC: modified UTF-7; after ENABLE UTF8=ACCEPT (RFC 6855
    §3) also raw UTF-8, including a name that is not valid modified UTF-7 ("R&D"). Before it,
    an 8-bit name is refused with NO, as Dovecot does (RFC 3501 §9: astring is 7-bit)."""
    if not utf8 and any(b > 0x7F for b in raw):
        raise Refused(b"Mailbox name is not valid modified UTF-7 (8-bit names need ENABLE UTF8=ACCEPT)")
    try:
        return mutf7.decode(raw)
    except mutf7.MUTF7Error as e:
        if utf8:
            try:
                return unicodedata.normalize("NFC", raw.decode("utf-8"))
            except UnicodeDecodeError:
                pass
        raise ParseError(f"Invalid mailbox name: {e}") from None


def parse_flag(tok) -> str:
    if not isinstance(tok, Atom) or not _FLAG_ATOM.match(tok):
        raise ParseError("Invalid flag")
    flag = bytes(tok).decode("ascii")
    if flag.startswith("\\"):
        known = _SYSTEM_FLAGS.get(flag.lower())
        if known is None:
            raise ParseError("Unknown system flag " + flag)
        return known
    return flag


def parse_datetime(raw: bytes) -> _dt.datetime:
    m = _DATETIME.match(raw)
    if not m or m.group(2).upper().decode() not in _MONTHS:
        raise ParseError("Invalid date-time")
    day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
    tz = _dt.timezone((1 if sign == b"+" else -1) * _dt.timedelta(hours=int(zh), minutes=int(zm)))
    try:
        return _dt.datetime(int(year), _MONTHS.index(mon.upper().decode()) + 1, int(day), int(hh), int(mm), int(ss), tzinfo=tz)
    except ValueError:
        raise ParseError("Invalid date-time") from None


# -- the parsers -----------------------------------------------------------------------------------


def arg_astring(s: Session, tokens: list):
    tok, rest = _first(tokens, "argument")
    if not isinstance(tok, (Atom, String)):
        raise ParseError("Expected a string")
    return bytes(tok), rest


def arg_mailbox(s: Session, tokens: list):
    raw, rest = arg_astring(s, tokens)
    return normalize_mailbox(decode_mailbox(raw, s.utf8_names)), rest


def arg_mailbox_as_sent(s: Session, tokens: list):
    """(mailbox, the client's spelling when it was not normalised UTF-8, else None): IMAP4rev2's
    SELECT/EXAMINE name the mailbox they opened and, for such a spelling, add OLDNAME (RFC 9051
    §6.3.2)."""
    raw, rest = arg_astring(s, tokens)
    name = normalize_mailbox(decode_mailbox(raw, s.utf8_names))
    sent = None
    if s.utf8_names and not raw.isascii():
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = name
        sent = text if normalize_mailbox(text) != name else None
    return (name, sent), rest


def arg_pattern(s: Session, tokens: list):
    """list-mailbox: like a mailbox name, but % and * are wildcards."""
    return arg_mailbox(s, tokens)


def arg_atom(s: Session, tokens: list):
    tok, rest = _first(tokens, "argument")
    if not isinstance(tok, Atom):
        raise ParseError("Expected an atom")
    return bytes(tok), rest


def arg_seqset(s: Session, tokens: list):
    tok, rest = _first(tokens, "sequence set")
    if not isinstance(tok, Atom):
        raise ParseError("Invalid sequence set")
    return parse_seqset(bytes(tok)), rest


def arg_flaglist(s: Session, tokens: list):
    tok, rest = _first(tokens, "flag list")
    items = tok if isinstance(tok, list) else [tok]
    return tuple(dict.fromkeys(parse_flag(t) for t in items)), rest  # in order: the first spelling wins


def arg_plist(s: Session, tokens: list):
    tok, rest = _first(tokens, "list")
    if not isinstance(tok, list):
        raise ParseError("Expected a parenthesised list")
    return tok, rest


def opt_plist(s: Session, tokens: list):
    if tokens and isinstance(tokens[0], list):
        return tokens[0], tokens[1:]
    return None, tokens


def opt_flaglist(s: Session, tokens: list):
    if tokens and isinstance(tokens[0], list):
        return frozenset(parse_flag(t) for t in tokens[0]), tokens[1:]
    return frozenset(), tokens


def opt_datetime(s: Session, tokens: list):
    if tokens and isinstance(tokens[0], String) and not isinstance(tokens[0], LiteralString):
        return parse_datetime(bytes(tokens[0])), tokens[1:]
    return None, tokens


def arg_fetchatt(s: Session, tokens: list):
    tok, rest = _first(tokens, "fetch attributes")
    return parse_fetch_atts(tok), rest


def opt_list(s: Session, tokens: list):
    """An optional trailing parenthesised list (FETCH/SELECT modifiers)."""
    if tokens and isinstance(tokens[0], list):
        return tokens[0], tokens[1:]
    return None, tokens


def arg_rest(s: Session, tokens: list):
    return list(tokens), []
