"""Parsing FETCH attributes (RFC 3501 §6.4.5) into FetchItem values."""

from __future__ import annotations

import re
from dataclasses import dataclass

from imap.wire import Atom, ParseError

SIMPLE = {
    b"FLAGS", b"UID", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE", b"BODYSTRUCTURE", b"BODY",
    b"RFC822", b"RFC822.HEADER", b"RFC822.TEXT", b"MODSEQ", b"EMAILID", b"THREADID",
}
MACROS = {
    b"ALL": (b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE"),
    b"FAST": (b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"),
    b"FULL": (b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE", b"BODY"),
}
_SECTION = re.compile(rb"^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)\[([^\]]*)\](?:<(\d+)(?:\.(\d+))?>)?$", re.I)
_MSGTEXT = re.compile(rb"^(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)(?: \((.*)\))?$", re.I)
_FIELD = re.compile(rb'^[\x21-\x39\x3b-\x7e]+$')


@dataclass(frozen=True)
class FetchItem:
    name: bytes  # FLAGS, UID, ... or BODY[] for sections
    peek: bool = False
    part: tuple[int, ...] = ()
    text: bytes = b""  # b"", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
    fields: tuple[bytes, ...] = ()
    partial: tuple[int, int | None] | None = None

    @property
    def is_section(self) -> bool:
        return self.name == b"BODY[]"

    @property
    def is_binary(self) -> bool:
        """BINARY[part] or BINARY.SIZE[part] (RFC 3516)."""
        return self.name in (b"BINARY[]", b"BINARY.SIZE[]")

    def label(self) -> bytes:
        """The response name: BODY.PEEK answers as BODY, partials name only the origin."""
        if self.is_binary:
            spec = b".".join(b"%d" % p for p in self.part)
            origin = b"<%d>" % self.partial[0] if self.partial else b""
            return self.name[:-1] + spec + b"]" + origin
        if not self.is_section:
            return self.name
        spec = b".".join(b"%d" % p for p in self.part)
        if self.text:
            spec = spec + b"." + self.text if spec else self.text
            if self.fields:
                spec += b" (" + b" ".join(self.fields) + b")"
        origin = b"<%d>" % self.partial[0] if self.partial else b""
        return b"BODY[" + spec + b"]" + origin


def parse_fetch_atts(tok) -> list[FetchItem]:
    """``tok`` is one Atom or a list of Atoms."""
    if isinstance(tok, Atom) and tok.upper() in MACROS:
        return [FetchItem(n) for n in MACROS[tok.upper()]]
    items = tok if isinstance(tok, list) else [tok]
    if not items:
        raise ParseError("Empty fetch attribute list")
    out = []
    for it in items:
        if not isinstance(it, Atom):
            raise ParseError("Invalid fetch attribute")
        out.append(parse_one(bytes(it)))
    return out


def parse_one(att: bytes) -> FetchItem:
    up = att.upper()
    if up in SIMPLE:
        return FetchItem(up)
    m = _SECTION.match(att)
    if not m:
        raise ParseError("Invalid fetch attribute: " + att.decode("ascii", "replace")[:40])
    kind = m.group(1).upper()
    part, text, fields = _section(m.group(2))
    partial = None
    if m.group(3) is not None:
        if m.group(4) is None:
            raise ParseError("Partial needs <offset.length>")
        partial = (_number(m.group(3)), _number(m.group(4)))
    if kind.startswith(b"BINARY"):
        # RFC 3516 §6: section-binary is part numbers only; BINARY.SIZE takes no partial.
        if text:
            raise ParseError("BINARY takes a part number only")
        if kind == b"BINARY.SIZE":
            if partial is not None:
                raise ParseError("BINARY.SIZE takes no partial")
            return FetchItem(b"BINARY.SIZE[]", peek=True, part=part)
        return FetchItem(b"BINARY[]", peek=kind == b"BINARY.PEEK", part=part, partial=partial)
    return FetchItem(b"BODY[]", peek=kind == b"BODY.PEEK", part=part, text=text, fields=fields, partial=partial)


def _number(digits: bytes) -> int:
    """A section part or partial number: ``number`` is 32-bit unsigned (RFC 3501 §9)."""
    if len(digits) > 10 or int(digits) > 0xFFFFFFFF:
        raise ParseError("Number out of range")
    return int(digits)


def _section(spec: bytes) -> tuple[tuple[int, ...], bytes, tuple[bytes, ...]]:
    part: list[int] = []
    rest = spec
    while rest and rest[:1].isdigit():
        num, _, rest = rest.partition(b".")
        if not num.isdigit() or num.startswith(b"0"):
            raise ParseError("Invalid section part number")
        part.append(_number(num))
    if not rest:
        if spec.endswith(b"."):
            raise ParseError("Invalid section")
        return tuple(part), b"", ()
    m = _MSGTEXT.match(rest)
    if not m:
        raise ParseError("Invalid section text")
    text = m.group(1).upper()
    if text == b"MIME" and not part:
        raise ParseError("MIME needs a part number")
    fields: tuple[bytes, ...] = ()
    if text.startswith(b"HEADER.FIELDS"):
        if m.group(2) is None:
            raise ParseError("HEADER.FIELDS needs a list of header names")
        names = [f.strip(b'"') for f in m.group(2).split()]
        if not names or not all(_FIELD.match(f) for f in names):
            raise ParseError("Invalid header field name")
        fields = tuple(f.upper() for f in names)
    elif m.group(2) is not None:
        raise ParseError("Unexpected list in section")
    return tuple(part), text, fields
