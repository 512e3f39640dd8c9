"""FETCH responses, served from the metadata cached at delivery and byte ranges of the stored message.

Responses are rendered in a worker thread batch by batch (``store.messages.fetch_rows``, plain tuples;
imap/fetchrender.py) and handed to the reactor in chunks of ``CHUNK`` bytes without waiting for
them to be written; the worker waits only while the reactor holds MAX_AHEAD bytes it has not
written or the transport's buffer is full (a streaming producer), so a FETCH over 100,000
messages or of a 40 MB body never sits in memory whole. The last chunk comes back as the
worker's result and goes out with the tagged line (a response of up to CHUNK bytes costs one
thread hop each way). Small bodies are read in one query per group (``read_blobs``), the first
group small so the client receives while the rest is read; large sections are streamed from
the blob file in chunks.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.threads import blockingCallFromThread

from imap.binary import UnknownCTE, check as check_binary, decode as decode_binary, declared_encoding, decoded_size, locate as locate_binary, needs_literal8
from imap.fetchparse import FetchItem
from imap.fetchrender import (
    KEEP_AT_LEAST, RENDER_VERSION, FlagText, Numbering, fill_renderings, needs_blob, render_simple, rendered_kinds,
    renderings_needed, save_date_piece, simple_piece,
)
from imap.sections import NoSuchPart, apply_partial, filter_fields, section_range
from imap.wire import Atom, ParseError
from storage.api import ROW_BLOB, ROW_MODSEQ, ROW_SIZE, ROW_UID

OK = b"OK"
STREAM_ABOVE = 256 * 1024
CHUNK = 1024 * 1024
#: Bodies of at most STREAM_ABOVE bytes are read in one query per group: GROUP_BYTES' worth at
#: first, groups doubling up to PRELOAD_BYTES once STEADY_AFTER bytes were read (see _preload_groups).
GROUP_BYTES = 128 * 1024
STEADY_AFTER = 1024 * 1024
PRELOAD_BYTES = 4 * 1024 * 1024
#: After a batch of rows or a group of bodies, what is waiting is handed to the reactor once it
#: is this large (the client reads it while the next is prepared).
FLUSH_AT = 32 * 1024
#: The worker goes on while the reactor has not yet written at most this much of what it handed over.
MAX_AHEAD = 2 * CHUNK


def sets_seen(item: FetchItem) -> bool:
    return ((item.is_section or item.name == b"BINARY[]") and not item.peek) or item.name in (b"RFC822", b"RFC822.TEXT")


def needs_structure(item: FetchItem) -> bool:
    """Whether the item needs the MIME tree (BODY and BODYSTRUCTURE come rendered, see fetchrender)."""
    if item.name in (b"RFC822.HEADER", b"RFC822.TEXT"):
        return True
    if item.is_binary:
        return bool(item.part)
    return item.is_section and bool(item.part or item.text)


def parse_fetch_modifiers(mods, uid: bool, qresync: bool) -> tuple[int | None, bool]:
    """(CHANGEDSINCE modseq [VANISHED]) → (changedsince, vanished)."""
    if mods is None:
        return None, False
    changedsince, vanished, i = None, False, 0
    while i < len(mods):
        name = bytes(mods[i]).upper() if isinstance(mods[i], Atom) else b""
        if name == b"CHANGEDSINCE" and i + 1 < len(mods) and isinstance(mods[i + 1], Atom) and mods[i + 1].isdigit():
            changedsince = int(mods[i + 1])
            i += 2
        elif name == b"VANISHED":
            if not (uid and qresync):
                raise ParseError("VANISHED needs UID FETCH with QRESYNC enabled")
            vanished = True
            i += 1
        else:
            raise ParseError("Unknown FETCH modifier")
    if vanished and changedsince is None:
        raise ParseError("VANISHED needs CHANGEDSINCE")
    return changedsince, vanished


class Flow:
    """Streaming producer registered on the transport for the duration of a FETCH, and the count
    of bytes the worker handed to the reactor that it has not written yet."""

    def __init__(self) -> None:
        self.paused = False
        self.stopped = False
        self.waiter: defer.Deferred | None = None
        self.queued = 0  # bytes handed over; only the worker adds
        self.written = 0  # of those, bytes given to the transport; only the reactor adds

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._release()

    def stopProducing(self) -> None:
        self.stopped = True
        self._release()

    def _release(self) -> None:
        d, self.waiter = self.waiter, None
        if d is not None:
            d.callback(None)


class FetchAborted(Exception):
    pass


class FetchJob:
    """One FETCH response being rendered by a worker thread and written by the reactor."""

    def __init__(self, conn, store, reactor, flow: Flow) -> None:
        self.conn = conn  # imap.state.Connection
        self.store = store
        self.reactor = reactor
        self.flow = flow
        self.unknown_cte: str | None = None  # set when a BINARY part had an encoding we cannot decode

    # -- worker thread -------------------------------------------------------------------------
    def _send(self, flow: Flow, data: bytes) -> None:
        """On the reactor, in the order the worker handed the data over."""
        flow.written += len(data)
        if not (self.conn.closed or flow.stopped):
            self.conn.write_now(data)

    def _until_writable(self, flow: Flow):
        """On the reactor: hold the worker while the transport is full."""
        if self.conn.closed or flow.stopped:
            raise FetchAborted()
        if flow.paused:
            flow.waiter = defer.Deferred()
            return flow.waiter
        return None

    def run(self, view_uids, recent, folder_id, uids, items, changedsince=None, mailbox=None) -> bytes:
        """Writes the response but its last part, which it returns: the reactor writes that with
        the tagged line, one thread hop for a response of at most CHUNK bytes. Larger ones are
        handed over CHUNK by CHUNK without waiting, while the reactor has taken all but
        MAX_AHEAD bytes and the transport is not full, so reading goes on while the socket sends."""
        store, reactor, flow = self.store, self.reactor, self.flow

        def send(data: bytes) -> None:
            while True:
                if flow.stopped or self.conn.closed:
                    raise FetchAborted()
                if not flow.paused and flow.queued - flow.written < MAX_AHEAD:
                    break
                blockingCallFromThread(reactor, self._until_writable, flow)
            flow.queued += len(data)
            reactor.callFromThread(self._send, flow, data)

        flag_text = FlagText(recent, mailbox if any(i.name == b"FLAGS" for i in items) else None)
        self.flag_text = flag_text
        pieces = [simple_piece(i, flag_text) for i in items]
        if any(i.name == b"SAVEDATE" for i in items):  # RFC 8514: read apart, by UID
            saved = store.messages.save_dates(folder_id, uids)
            piece = save_date_piece(saved)
            pieces = [piece if i.name == b"SAVEDATE" else p for i, p in zip(items, pieces)]
        needed = renderings_needed(items)
        simple = all(pieces)
        fmt = b"* %d FETCH (" + b" ".join(p[0] for p in pieces) + b")\r\n" if simple else b""
        getters = [p[1] for p in pieces] if simple else []
        numbering = Numbering(view_uids)
        need_date = any(i.name == b"INTERNALDATE" for i in items)
        pending_keep: list = []
        kept = 0
        out = _Out(send)
        rendered = RENDER_VERSION if needed else None
        rows_of = store.messages.fetch_rows(folder_id, uids, date=need_date, rendered=rendered, kinds=rendered_kinds(needed), blob=not simple or needs_blob(items))
        try:
            for rows in rows_of:
                if needed:
                    rows, keep = fill_renderings(store, rows, needed)
                    pending_keep += keep
                if simple:
                    out.add(render_simple(rows, fmt, getters, numbering, changedsince, flag_text))
                    if out.size >= FLUSH_AT:  # on its way while the next batch is read
                        out.flush()
                else:
                    self._render_sections(rows, items, pieces, numbering, changedsince, out)
                if len(pending_keep) >= KEEP_AT_LEAST or (kept and pending_keep):
                    kept += self._keep(pending_keep)
                    pending_keep = []
        except UnknownCTE as e:
            # RFC 3516 §4.2: the command fails with NO [UNKNOWN-CTE]; the messages answered
            # before this one keep their (complete) responses.
            self.unknown_cte = str(e)
            close = getattr(rows_of, "close", None)
            if close is not None:
                close()
        if pending_keep and (kept or len(pending_keep) >= KEEP_AT_LEAST):
            self._keep(pending_keep)
        return out.take()

    def _keep(self, items: list) -> int:
        """Hand renderings to the store for the next FETCH (written in the background)."""
        self.store.messages.put_rendered(RENDER_VERSION, items)
        return len(items)

    def _render_sections(self, rows, items, pieces, numbering, changedsince, out: "_Out") -> None:
        """Lines for items that read the message's bytes."""
        store = self.store
        rows = [r for r in rows if changedsince is None or r[ROW_MODSEQ] > changedsince]
        meta = {}
        if any(needs_structure(i) for i in items):
            meta = store.messages.body_meta([r[ROW_BLOB] for r in rows], frozenset({"structure"}))
        labels = [_label(i) for i in items]
        binary_parts = [i.part for i in items if i.is_binary and i.part]
        # Header sections only (a client listing a folder: BODY.PEEK[HEADER.FIELDS (From Subject
        # Date …)]): read each message up to its body, not whole (structure["body_start"]).
        heads = bool(meta) and all(_header_only(label[0]) for label in labels)

        def head_size(row) -> int:
            structure = meta.get(row[ROW_BLOB], (None, None))[1]
            return structure["body_start"] if structure else row[ROW_SIZE]

        # BINARY.SIZE alone: a part sent as stored is sized from the tree, a decoded one reads
        # only its own range; no body is read ahead.
        sizes_only = all(i.name == b"BINARY.SIZE[]" for i, p in zip(items, pieces) if p is None)
        for group in _preload_groups(rows, head_size if heads else _whole_size):
            if sizes_only:
                bodies = {}
            elif heads:
                lengths = {r[ROW_BLOB]: head_size(r) for r in group if head_size(r) <= STREAM_ABOVE}
                bodies = store.messages.read_heads(lengths) if lengths else {}
            else:
                small = [r[ROW_BLOB] for r in group if r[ROW_SIZE] <= STREAM_ABOVE]
                bodies = store.messages.read_blobs(small) if small else {}
            for row in group:
                msn = numbering.msn(row[ROW_UID])
                if not msn:
                    continue
                if (told := self.flag_text.announce(row)):
                    out.add(told)
                msg = _Msg(row, meta.get(row[ROW_BLOB], (None, None))[1], bodies.get(row[ROW_BLOB]))
                for part in binary_parts:  # before any of this message's response is written
                    check_binary(self._structure(msg), part)
                out.add(b"* %d FETCH (" % msn)
                for n, (item, piece, label) in enumerate(zip(items, pieces, labels)):
                    if n:
                        out.add(b" ")
                    if piece is not None:
                        out.add(piece[0] % piece[1](row))
                        continue
                    if item.is_binary:
                        big = self._binary(msg, item, label[1], out)
                    else:
                        big = self._section(msg, label[0], label[1], out)
                    if big is not None:  # stream a large section straight from the blob
                        start, end, eight = big
                        out.add(b"%s{%d}\r\n" % (eight, end - start))
                        out.flush()
                        self._stream_blob(msg.blob, start, end, out.send)
                out.add(b")\r\n")
            del bodies
            if out.size >= FLUSH_AT:
                out.flush()

    def _stream_blob(self, sha, start, end, send) -> None:
        with self.store.messages.open_blob(sha) as f:
            f.seek(start)
            left = end - start
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise IOError("stored message shorter than its metadata")
                send(chunk)
                left -= len(chunk)

    def _section(self, m: "_Msg", item: FetchItem, label: bytes, out: "_Out"):
        """Add ``label value``; returns (start, end) when a big range must be streamed."""
        out.add(label + b" ")
        try:
            if not item.part and not item.text:
                start, end = 0, m.size
            else:
                start, end = section_range(self._structure(m), m.size, item)
        except NoSuchPart:
            out.add(b'""')
            return None
        if item.text.startswith(b"HEADER.FIELDS"):
            data = filter_fields(self._read(m, start, end), item.fields, item.text == b"HEADER.FIELDS")
            data = apply_partial(data, item.partial)
        else:
            if item.partial is not None:
                off, length = item.partial
                start = min(end, start + off)
                end = min(end, start + length)
            if end - start > STREAM_ABOVE:
                return start, end, b""
            data = self._read(m, start, end) if end > start else b""
        # A message APPENDed as binary (RFC 3516 literal8) is served as written: NUL octets
        # cannot travel in a plain literal.
        out.add(b"~{%d}\r\n" % len(data) if b"\0" in data else b"{%d}\r\n" % len(data))
        out.add(data)
        return None

    def _binary(self, m: "_Msg", item: FetchItem, label: bytes, out: "_Out"):
        """Add ``BINARY[part] value`` or ``BINARY.SIZE[part] n`` (RFC 3516): only the part's
        range is read, and a part sent as stored is never read for its size. Returns (start,
        end, b"~" or b"") when a large stored range must be streamed."""
        try:
            where = locate_binary(self._structure(m) if item.part else None, m.size, item.part)
        except NoSuchPart:
            out.add(label + (b" 0" if item.name == b"BINARY.SIZE[]" else b' ""'))
            return None
        if item.name == b"BINARY.SIZE[]":
            if where.encoding is None:
                out.add(label + b" %d" % where.raw_size)
            else:
                out.add(label + b" %d" % decoded_size(self._read(m, where.start, where.end), where.encoding))
            return None
        declared = declared_encoding(m.structure, item.part)
        if where.encoding is None:
            start, end = where.start, where.end
            if item.partial is not None:
                off, length = item.partial
                start = min(end, start + off)
                end = min(end, start + length)
            if end - start > STREAM_ABOVE:
                out.add(label + b" ")
                return start, end, b"~" if declared == "binary" else b""
            data = self._read(m, start, end) if end > start else b""
        else:
            data = apply_partial(decode_binary(self._read(m, where.start, where.end), where.encoding), item.partial)
        eight = b"~" if needs_literal8(data, where.encoding, declared) else b""
        out.add(label + b" %s{%d}\r\n" % (eight, len(data)))
        out.add(data)
        return None

    def _read(self, m: "_Msg", start: int, end: int) -> bytes:
        if m.data is not None:
            return m.data[start:end]
        return self.store.messages.read_blob(m.blob, start, end - start)

    def _structure(self, m: "_Msg") -> dict:
        if m.structure:
            return m.structure
        # No cached tree (should not happen): treat the message as one text part.
        head = self._read(m, 0, min(m.size, 1024 * 1024))
        cut = head.find(b"\r\n\r\n")
        body_start = cut + 4 if cut >= 0 else m.size
        return {"type": "text", "subtype": "plain", "header_start": 0, "body_start": body_start, "body_end": m.size}


class _Out:
    """The response being built: parts joined (one copy) and sent once CHUNK bytes are waiting."""

    __slots__ = ("send", "parts", "size")

    def __init__(self, send) -> None:
        self.send = send
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)
        if self.size >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.send(self.take())

    def take(self) -> bytes:
        """What is waiting, joined; the buffer is empty afterwards."""
        data = b"".join(self.parts)
        self.parts, self.size = [], 0
        return data


class _Msg:
    """What a section needs of one message: its size, body hash, MIME tree and (when small) bytes."""

    __slots__ = ("uid", "size", "blob", "structure", "data")

    def __init__(self, row: tuple, structure: dict | None, data: bytes | None) -> None:
        self.uid, self.size, self.blob = row[ROW_UID], row[ROW_SIZE], row[ROW_BLOB]
        self.structure = structure
        self.data = data


def _label(item: FetchItem) -> tuple[FetchItem, bytes]:
    """The section an item reads and the name it answers with (RFC822.* are BODY[] forms)."""
    if item.name == b"RFC822":
        return FetchItem(b"BODY[]"), b"RFC822"
    if item.name == b"RFC822.HEADER":
        return FetchItem(b"BODY[]", text=b"HEADER"), b"RFC822.HEADER"
    if item.name == b"RFC822.TEXT":
        return FetchItem(b"BODY[]", text=b"TEXT"), b"RFC822.TEXT"
    return item, item.label()


def _header_only(item: FetchItem) -> bool:
    """The item reads only the message's own header section (bytes before its body)."""
    return not item.part and item.text in (b"HEADER", b"HEADER.FIELDS", b"HEADER.FIELDS.NOT")


def _whole_size(row) -> int:
    return row[ROW_SIZE]


def _preload_groups(rows, size_of=_whole_size):
    """Consecutive rows whose small bodies together stay under a limit: small groups while the
    first STEADY_AFTER bytes are read, so the client receives one while the next is read and
    the last one, which nothing overlaps, is short (groups doubling from the start made the
    last one the largest, and the slowest to arrive); then doubling groups, fewer queries for a
    whole-folder FETCH."""
    group, size, limit, done = [], 0, GROUP_BYTES, 0
    for row in rows:
        if group and size + size_of(row) > limit:
            yield group
            done += size
            if done >= STEADY_AFTER:
                limit = min(2 * limit, PRELOAD_BYTES)
            group, size = [], 0
        group.append(row)
        if size_of(row) <= STREAM_ABOVE:
            size += size_of(row)
    if group:
        yield group
