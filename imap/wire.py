"""IMAP wire syntax: tokenizing a complete command and quoting values in responses.

The server assembles a whole command (its lines and the literals between them) before parsing,
so the argument parsers in ``imap/args.py`` work on tokens, never on half-read lines. Twisted's
own parsers split quoted strings on ``"`` without honouring ``\\"`` escapes and cannot see
literals inside lists (SEARCH); these replace them.
"""

from __future__ import annotations

import re
from typing import BinaryIO


class ParseError(Exception):
    """A syntax error in the client's command; answered with BAD and the message."""


class Atom(bytes):
    """An unquoted token (command names, NIL, numbers, sequence sets, flags, fetch items)."""


class String(bytes):
    """A quoted string or a literal held in memory."""


class LiteralString(String):
    """A literal held in memory (distinct from a quoted string where the grammar cares)."""


class FileLiteral:
    """A literal spooled to a temporary file (APPEND bodies)."""

    def __init__(self, file: BinaryIO, size: int) -> None:
        self.file = file
        self.size = size


class Command:
    """A complete command as received: text segments with a literal after each but the last."""

    def __init__(self) -> None:
        self.segments: list[bytes] = []
        self.literals: list[bytes | FileLiteral] = []


#: Bytes that end an atom. A balanced "[" ... "]" inside an atom (BODY[HEADER.FIELDS (A B)]) is
#: kept whole; an unbalanced bracket is an ordinary atom character.
_ATOM_END = b' ()"{\r\n'
_LITERAL_SUFFIX = re.compile(rb"\{(\d{1,19})(\+?)\}$")


def literal_marker(line: bytes) -> tuple[int, bool] | None:
    """``(size, non_synchronizing)`` when ``line`` ends with ``{n}`` or ``{n+}``."""
    m = _LITERAL_SUFFIX.search(line)
    if m is None:
        return None
    return int(m.group(1)), bool(m.group(2))


def tokenize(cmd: Command) -> list:
    """Turn the command into nested lists of Atom / String / FileLiteral tokens."""
    stack: list[list] = [[]]
    for i, seg in enumerate(cmd.segments):
        if i < len(cmd.literals):
            seg = _LITERAL_SUFFIX.sub(b"", seg)
        _tokenize_text(seg, stack)
        if i < len(cmd.literals):
            lit = cmd.literals[i]
            stack[-1].append(lit if isinstance(lit, FileLiteral) else LiteralString(lit))
    if len(stack) != 1:
        raise ParseError("Unbalanced parentheses")
    return stack[0]


def _tokenize_text(data: bytes, stack: list[list]) -> None:
    i, n = 0, len(data)
    while i < n:
        c = data[i : i + 1]
        if c == b" ":
            i += 1
        elif c == b"(":
            new: list = []
            stack[-1].append(new)
            stack.append(new)
            i += 1
        elif c == b")":
            if len(stack) == 1:
                raise ParseError("Unbalanced parentheses")
            stack.pop()
            i += 1
        elif c == b'"':
            i = _quoted(data, i + 1, stack[-1])
        elif c == b"{":
            raise ParseError("Literal not at end of line")
        elif c in (b"\r", b"\n") or data[i] == 0:
            raise ParseError("Control character in command")
        else:
            i = _atom(data, i, stack[-1])


def _quoted(data: bytes, i: int, out: list) -> int:
    buf = bytearray()
    n = len(data)
    while i < n:
        c = data[i]
        if c == 0x5C:  # backslash
            if i + 1 >= n or data[i + 1] not in (0x5C, 0x22):
                raise ParseError("Bad escape in quoted string")
            buf.append(data[i + 1])
            i += 2
        elif c == 0x22:
            out.append(String(bytes(buf)))
            return i + 1
        elif c == 0:
            raise ParseError("NUL in quoted string")
        else:
            buf.append(c)
            i += 1
    raise ParseError("Unterminated quoted string")


_PLAIN_ATOM = re.compile(rb'[^ ()"{\r\n\x00\[\]]*')


def _atom(data: bytes, i: int, out: list) -> int:
    # The common atom (a long UID set, a flag) in one regex step; brackets go the long way.
    end = _PLAIN_ATOM.match(data, i).end()
    if end == len(data) or data[end : end + 1] in _ATOM_END:
        out.append(Atom(data[i:end]))
        return end
    start = i
    depth = 0
    n = len(data)
    while i < n:
        c = data[i : i + 1]
        if c == b"[":
            depth += 1
        elif c == b"]":
            depth -= 1
            if depth < 0:
                break
        elif depth == 0 and c in _ATOM_END:
            break
        elif c == b'"':  # a quoted header name in BODY[HEADER.FIELDS ("Subject")]
            i = _quoted(data, i + 1, [])
            continue
        elif c in b"\r\n\x00":
            raise ParseError("Control character in command")
        i += 1
    if depth:
        # "[" is an ATOM-CHAR and "]" an ASTRING-CHAR (RFC 3501 §9): an unbalanced bracket is
        # part of a plain atom (a mailbox "a[b"), never a section that runs past its line.
        i = start
        while i < n and data[i : i + 1] not in _ATOM_END:
            if data[i] == 0:
                raise ParseError("Control character in command")
            i += 1
    out.append(Atom(data[start:i]))
    return i


# -- responses -----------------------------------------------------------------------------------

_QUOTABLE = re.compile(rb'^[\x01-\x09\x0b\x0c\x0e-\x7f]*$')


_PLAIN_STR = re.compile(r'^[\x20-\x21\x23-\x5b\x5d-\x7e]{0,1023}$')


def astring(value: str | bytes | None) -> bytes:
    """A quoted string, or a literal when the value has 8-bit bytes, CR/LF or is long.

    Never raises on non-ASCII input (Twisted's networkString does, dropping the connection).
    """
    if value is None:
        return b"NIL"
    if isinstance(value, str):
        if _PLAIN_STR.match(value):  # the common case, checked once
            return b'"' + value.encode("ascii") + b'"'
        raw = value.encode("utf-8", "surrogateescape")
    else:
        raw = bytes(value)
    if len(raw) < 1024 and _QUOTABLE.match(raw) and raw.count(b'"') + raw.count(b"\\") < 4:
        return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(raw) + raw


nstring = astring

_UTF8_QUOTABLE = re.compile(r'^[^\x00-\x1f\x7f]{0,1023}$')


def utf8_astring(value: str) -> bytes:
    """A string as UTF-8 (RFC 6855 after ENABLE UTF8=ACCEPT): quoted when it can be, else a literal."""
    raw = value.encode("utf-8", "surrogateescape")
    if _UTF8_QUOTABLE.match(value) and len(raw) < 1024:
        return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(raw) + raw


def plist(items) -> bytes:
    return b"(" + b" ".join(items) + b")"
