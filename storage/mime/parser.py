"""One-pass MIME scanner: the metadata cached at delivery (docs/CONTRACTS.md "MIME metadata").

Why not ``email.message_from_bytes``: it holds several copies of a 30 MB message and loses byte
offsets. This reads the source once, line by line, keeping only header blocks and (capped) the
text of text/plain and text/html parts, and records for every part the absolute offsets IMAP
needs for BODYSTRUCTURE and BODY[1.2] without re-parsing. Broken MIME degrades (RFC 3501
defaults, a missing boundary closes at the end) and never raises.

``measure=True`` also records, per part, what the attachment limit needs (R-QUOTA-1; measured by
``quota.measure_attachments`` over the returned tree): the decoded size of base64 and
quoted-printable bodies, counted while scanning without keeping them (storage/mime/decoded.py),
and what could not be read as the part claims. One nesting limit (``limits.mime_max_depth``)
applies to both uses: deeper parts are not split.
"""

from __future__ import annotations

import io
import re
from typing import BinaryIO

from storage.mime.bodytext import BodyText
from storage.mime.decoded import RawCounter, counter_for
from storage.mime.envelope import build_envelope, build_search, empty_envelope
from storage.mime.headers import FIELD_NAME, split_fields
from storage.mime.part import make_part, param

_READ_LIMIT = 65536  # longest line handled at once; longer lines arrive in pieces
_BLOCK = 1 << 20  # bytes read from the source at a time
_HEADER_CAP = 256 * 1024  # header bytes kept per part; the rest is scanned but not parsed
#: Parts nested deeper are read as opaque bodies (a JSON tree, and IMAP builders, recurse); the
#: default of ``limits.mime_max_depth``. Real mail nests a few levels; 32 is far beyond it.
DEFAULT_MAX_DEPTH = 32
_MAX_PARTS = 5000  # later delimiters count as content: the metadata stays small
_DELIMITERS: dict[tuple, tuple] = {}  # boundaries → what _Scanner._delimiters returns, reused
_MESSAGE_ENCODINGS = ("7bit", "8bit", "binary")  # a base64 message/rfc822 is not scanned inside
_MESSAGE_SUBTYPES = ("rfc822", "global")  # RFC 6532 message/global nests like message/rfc822
_COUNTED_ENCODINGS = ("base64", "quoted-printable")  # measure: decoded size differs from the size
# A run of whole header lines, each a field or a continuation (what _chunk keeps line by line).
_HEADER_LINES = re.compile(rb"(?:(?:[\x21-\x39\x3b-\x7e]+[ \t]*:|[ \t])[^\n]*\n)+")


class _Entity:
    """A part being scanned: in its header block, then in its body."""

    __slots__ = ("part", "parent", "chunks", "kept", "in_headers", "fields", "boundary", "state",
                 "body_nl", "children", "nested", "collect", "depth", "counter", "held", "opaque", "broken",
                 "dropped")

    def __init__(self, header_start: int, parent: "_Entity | None") -> None:
        self.part: dict = {"header_start": header_start}
        self.parent = parent
        self.chunks: list[bytes] = []
        self.kept = 0
        self.in_headers = True
        self.fields: list[tuple[str, bytes]] = []
        self.boundary: bytes | None = None
        self.state = ""  # multipart: "preamble", "child", "epilogue"
        self.body_nl = 0
        self.children: list[dict] = []
        self.nested: "_Entity | None" = None
        self.collect: bytearray | None = None
        self.depth = 0 if parent is None else parent.depth + 1
        self.counter: RawCounter | None = None  # measure: decodes a base64/QP body to count it
        self.held = b""  # the counter's last bytes, fed at the end unless they precede a delimiter
        self.opaque = False  # could not be read as what it claims (not split, header cut off)
        self.broken = False  # no blank line after its header; a multipart never closed
        self.dropped = False  # header bytes past _HEADER_CAP were not kept


def _boundary_kind(line: bytes, boundary: bytes) -> bool | None:
    """True for a close delimiter, False for a delimiter, None when ``line`` is neither."""
    if not line.startswith(boundary, 2):
        return None
    rest = line[2 + len(boundary):]
    closing = rest.startswith(b"--")
    if closing:
        rest = rest[2:]
    return closing if not rest.strip(b" \t\r\n") else None


class _Scanner:
    def __init__(self, search_text: bool = True, max_depth: int = DEFAULT_MAX_DEPTH, measure: bool = False) -> None:
        self.search_text = search_text
        self.max_depth = max_depth
        self.measure = measure
        self.offset = 0  # of the chunk being handled
        self.nl = 0  # newlines before it
        self.tail = b""  # last bytes before it (line-ending checks at a boundary)
        self.bol = True  # the chunk starts a line
        self.root = _Entity(0, None)
        self.stack = [self.root]
        self.body = BodyText()
        self.parts = 1

    def run(self, source: BinaryIO) -> dict:
        read = source.read
        buf, pos, eof = b"", 0, False
        while True:
            if len(buf) - pos < _READ_LIMIT and not eof:
                # A stream may return less than asked (a pipe, a socket): read on until a whole
                # line fits, so lines never split where a file would have given them whole.
                pieces, have = [buf[pos:]], len(buf) - pos
                while have < _READ_LIMIT:
                    block = read(_BLOCK)
                    if not block:
                        eof = True
                        break
                    pieces.append(block)
                    have += len(block)
                buf, pos = b"".join(pieces), 0
            if pos >= len(buf):
                break
            top = self.stack[-1]
            if self.bol and not top.in_headers:
                # Body lines matter only when they may be a delimiter: jump to the next such line.
                delimiters = self._delimiters()
                if delimiters is None or not buf.startswith(delimiters[0], pos):
                    found = delimiters[1].search(buf, pos) if delimiters else None
                    keep = 0 if eof or not delimiters else delimiters[2]
                    stop = found.start() + 1 if found else max(pos + 1, len(buf) - keep)
                    self._advance(buf, pos, stop, top)
                    pos = stop
                    continue
            if self.bol and top.in_headers and (top.chunks or buf[pos:pos + 1] not in b" \t") \
                    and self._delimiters() is None:
                # Header lines in one regex match, not one _chunk each: a tenth of a small
                # message's parse. With no delimiter open no line can end the part; the cap on kept
                # header bytes falls back to the line-by-line path.
                lines = _HEADER_LINES.match(buf, pos)
                if lines is not None and top.kept + (lines.end() - pos) <= _HEADER_CAP:
                    self._keep(top, lines.group())
                    self._advance(buf, pos, lines.end(), None)
                    pos = lines.end()
                    continue
            newline = buf.find(b"\n", pos, pos + _READ_LIMIT)
            stop = newline + 1 if newline >= 0 else min(len(buf), pos + _READ_LIMIT)
            chunk = buf[pos:stop]
            self._chunk(chunk)
            self._advance(buf, pos, stop, None)
            pos = stop
        while self.stack:
            self._close(self.stack.pop(), at_boundary=False)
        if self.measure:  # the top header section is read again where the parse is used to store
            return {"size": self.offset, "envelope": None, "structure": self.root.part,
                    "search": {"body": self.body.text()}, "fields": self.root.fields}
        envelope = build_envelope(self.root.fields)
        return {
            "size": self.offset,
            "envelope": envelope,
            "structure": self.root.part,
            "search": build_search(self.root.fields, self.body.text(), envelope, headers=self.search_text),
        }

    def _delimiters(self) -> "tuple[tuple[bytes, ...], re.Pattern[bytes], int] | None":
        """(line prefixes, pattern finding the next such line, bytes to keep back at a block end)
        for the delimiters of the multiparts now open, or None when there are none."""
        active = tuple(e.boundary for e in self.stack
                       if e.boundary is not None and not e.in_headers and e.state != "epilogue")
        if not active:
            return None
        found = _DELIMITERS.get(active)
        if found is None:
            if len(_DELIMITERS) > 256:
                _DELIMITERS.clear()
            prefixes = tuple(b"--" + b for b in active)
            pattern = re.compile(b"\n(?:" + b"|".join(map(re.escape, prefixes)) + b")")
            found = _DELIMITERS[active] = (prefixes, pattern, 2 + max(map(len, prefixes)))
        return found

    def _advance(self, buf: bytes, start: int, stop: int, body: "_Entity | None") -> None:
        """Account for buf[start:stop] having been read (and keep it for a text part's body)."""
        if body is not None:
            if body.collect is not None:
                self.body.keep(body.collect, buf[start:stop])
            if body.counter is not None:
                _count(body, buf, start, stop)
        self.offset += stop - start
        self.nl += buf.count(b"\n", start, stop)
        self.tail = (self.tail + buf[max(start, stop - 3):stop])[-3:]
        self.bol = buf[stop - 1:stop] == b"\n"

    # -- per chunk ------------------------------------------------------------------------------
    def _chunk(self, chunk: bytes) -> None:
        if self.bol and chunk[:2] == b"--":
            for index in range(len(self.stack) - 1, -1, -1):
                entity = self.stack[index]
                if entity.boundary is None or entity.in_headers or entity.state == "epilogue":
                    continue
                closing = _boundary_kind(chunk, entity.boundary)
                if closing is None:
                    continue
                if not closing and self.parts >= _MAX_PARTS:
                    self.stack[-1].opaque = True  # the parts after it are read as its content
                    continue
                while len(self.stack) > index + 1:
                    self._close(self.stack.pop(), at_boundary=True)
                if closing:
                    entity.state = "epilogue"
                else:
                    entity.state = "child"
                    self.parts += 1
                    self.stack.append(_Entity(self.offset + len(chunk), entity))
                return
        top = self.stack[-1]
        if top.in_headers:
            if not self.bol:  # rest of an over-long header line
                self._keep(top, chunk)
                return
            if chunk in (b"\r\n", b"\n"):
                self._end_headers(top, self.offset + len(chunk), self.nl + 1)
                return
            if FIELD_NAME.match(chunk) or (chunk[:1] in (b" ", b"\t") and top.chunks):
                self._keep(top, chunk)
                return
            if not top.chunks and top.parent is None and self.offset == 0 and chunk.startswith(b"From "):
                self._keep(top, chunk)  # mbox separator line: part of the header block, not a field
                return
            top.broken = True
            self._end_headers(top, self.offset, self.nl)  # no blank line: the body starts here
            self._chunk(chunk)
            return
        if top.collect is not None:
            self.body.keep(top.collect, chunk)
        if top.counter is not None:
            _count(top, chunk, 0, len(chunk))

    def _keep(self, entity: _Entity, chunk: bytes) -> None:
        if entity.kept < _HEADER_CAP:
            entity.chunks.append(chunk)
            entity.kept += len(chunk)
        else:
            entity.dropped = True

    # -- part boundaries ------------------------------------------------------------------------
    def _end_headers(self, entity: _Entity, body_start: int, body_nl: int, *, closing: bool = False) -> None:
        entity.in_headers = False
        block = b"".join(entity.chunks)
        entity.chunks = []
        entity.fields = split_fields(block)
        parent = entity.parent
        in_digest = parent is not None and parent.part.get("type") == "multipart" and parent.part.get("subtype") == "digest"
        part = entity.part
        part.update(make_part(entity.fields, in_digest))
        part["body_start"] = body_start
        entity.body_nl = body_nl
        deep = entity.depth >= self.max_depth
        if part["type"] == "multipart":
            boundary = param(part, "boundary")
            if boundary and not deep:
                entity.boundary = _original_bytes(boundary, block)
                entity.state = "preamble"
            else:  # a multipart without a (usable) boundary cannot be split: read it as text
                part.update(type="text", subtype="plain", params=[["charset", "us-ascii"]])
                entity.opaque = True
        elif part["type"] == "message" and part["subtype"] in _MESSAGE_SUBTYPES and part["encoding"] in _MESSAGE_ENCODINGS \
                and not deep:
            entity.nested = _Entity(body_start, entity)
            if not closing:
                self.stack.append(entity.nested)
        elif self.measure and part["encoding"] in _COUNTED_ENCODINGS:
            entity.counter = counter_for(part["encoding"])
        if part["type"] == "text" and part["subtype"] in ("plain", "html") and self.search_text and self.body.wants_more():
            entity.collect = bytearray()

    def _close(self, entity: _Entity, *, at_boundary: bool) -> None:
        """Finish ``entity``: its body ends at this chunk's delimiter, or at the end of input."""
        parent = entity.parent
        if not at_boundary and entity.in_headers and entity.part["header_start"] >= self.offset \
                and parent is not None and parent.boundary is not None:
            return  # a delimiter as the very last line opens no part
        if at_boundary:  # the line end before a delimiter belongs to the delimiter (RFC 2046)
            eol = 2 if self.tail.endswith(b"\r\n") else 1 if self.tail.endswith(b"\n") else 0
            end, end_nl = self.offset - eol, self.nl - (1 if eol else 0)
            last = self.tail[-eol - 1:len(self.tail) - eol] if len(self.tail) > eol else b""
        else:
            end, end_nl, last = self.offset, self.nl, self.tail[-1:]
        if entity.in_headers:
            start = max(entity.part["header_start"], end)
            self._end_headers(entity, start, end_nl, closing=True)
        part = entity.part
        end = max(end, part["body_start"])
        part["body_end"] = end
        part["size"] = end - part["body_start"]
        part["lines"] = max(0, end_nl - entity.body_nl) + (1 if part["size"] and last != b"\n" else 0)
        if entity.boundary is not None:
            entity.broken |= entity.state != "epilogue"  # never closed
            if entity.children:
                part["parts"] = entity.children
            else:  # no delimiter ever came: one text part over the whole body
                part.update(type="text", subtype="plain", params=[["charset", "us-ascii"]])
                entity.opaque = True
        if entity.nested is not None:
            nested = entity.nested
            if nested.part.get("body_end") is None:  # never opened (empty body): an empty message
                nested.part.update(make_part([], False), body_start=part["body_start"],
                                   body_end=end, size=0, lines=0)
            part["message"] = {"envelope": build_envelope(nested.fields), "structure": nested.part}
        elif part["type"] == "message" and part["subtype"] in _MESSAGE_SUBTYPES:
            structure = make_part([], False) | {"header_start": part["body_start"], "body_start": part["body_start"],
                                                 "body_end": end, "size": part["size"], "lines": part["lines"]}
            part["message"] = {"envelope": empty_envelope(), "structure": structure}
        if entity.collect is not None:
            self.body.add(entity.collect, part)
            entity.collect = None
        if self.measure:
            part["scan"] = self._scan(entity, at_boundary)
        if parent is not None and parent.boundary is not None:
            parent.children.append(part)


    def _scan(self, entity: _Entity, at_boundary: bool) -> dict:
        """What ``quota.measure_attachments`` reads of a closed part (``measure=True`` only):
        ``decoded`` body bytes; ``opaque``: not read as what it claims, ``raw`` bytes count;
        ``cut``: ended by the end of input inside an open multipart; ``broken``: damaged structure;
        ``bad_encoding``: a base64 body with a dangling character."""
        part, counter = entity.part, entity.counter
        decoded, bad_encoding = part["size"], False
        if counter is not None:
            rest = part["size"] - counter.raw  # the held bytes up to the body's end
            if rest > 0:
                counter.feed(entity.held[:rest])
            counter.close()
            decoded, bad_encoding = counter.decoded, counter.broken
            entity.counter = None
        opaque = entity.opaque or entity.dropped
        raw = part["body_end"] - part["header_start"] if entity.dropped else part["size"]
        cut = not at_boundary and any(e.boundary is not None and e.state != "epilogue" for e in self.stack)
        return {"decoded": decoded, "raw": raw, "opaque": opaque, "cut": cut,
                "broken": entity.broken or opaque, "bad_encoding": bad_encoding}


def _count(entity: _Entity, buf: bytes, start: int, stop: int) -> None:
    """Feed buf[start:stop] of a body to its counter, holding back its last two bytes: a line
    end before a delimiter belongs to the delimiter (RFC 2046), which is known only later."""
    counter = entity.counter
    assert counter is not None
    cut = max(start, stop - 2)
    held = entity.held
    if cut > start:
        if held:
            counter.feed(held)
        counter.feed(buf[start:cut])
        held = b""
    held += buf[cut:stop]
    if len(held) > 2:
        counter.feed(held[:-2])
        held = held[-2:]
    entity.held = held


def _original_bytes(value: str, block: bytes) -> bytes:
    """The boundary as it appears in the header bytes (decoded as UTF-8 or latin-1 there)."""
    for encoding in ("utf-8", "latin-1"):
        try:
            encoded = value.encode(encoding)
        except UnicodeEncodeError:
            continue
        if encoded in block:
            return encoded
    return value.encode("utf-8", errors="replace")


def parse(source: bytes | BinaryIO, *, search_text: bool = True, max_depth: int = DEFAULT_MAX_DEPTH,
          measure: bool = False) -> dict:
    """Metadata of a message (schema in docs/CONTRACTS.md). Offsets count from where ``source``
    starts (for a file: its current position). Reads the source once; never raises on content.
    ``search_text=False`` leaves ``search["body"]`` and ``search["headers"]`` empty: the text
    parts and the header fields are not decoded (the SQLite store extracts that text later, off
    the delivery path; storage/sql/search.py). Parts nested ``max_depth`` deep are not split.
    ``measure=True`` adds a ``scan`` entry to every part (``_Scanner._scan``) for the attachment
    limit, and leaves out what the top header section gives ("envelope" is None, "search" has
    only "body"; "fields" holds that section's fields): that parse is for SMTP's checks and
    ``storage.mime.reuse.with_head``, which builds them for the stored message's header section
    and drops the ``scan`` entries."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(source)
    return _Scanner(search_text, max_depth, measure).run(source)
