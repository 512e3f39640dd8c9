"""FETCH, served from the metadata cached at delivery and byte ranges of the stored message.

Responses are rendered in a worker thread batch by batch (``store.iter_fetch``) and written on
the reactor through ``blockingCallFromThread``; while the transport's buffer is full the worker
waits (a streaming producer), so a FETCH over 100,000 messages or of a 40 MB body never sits in
memory whole. Large sections are streamed from the blob file in chunks.
"""

from __future__ import annotations

import bisect
import datetime as _dt

from twisted.internet import defer
from twisted.internet.threads import blockingCallFromThread, deferToThread

from imap.args import ArgParsers as A
from imap.bodystructure import render_body
from imap.envelope import render_envelope
from imap.fetchparse import FetchItem
from imap.sections import NoSuchPart, apply_partial, filter_fields, section_range
from imap.qresync import in_ranges
from imap.session import format_flags, format_set
from imap.wire import Atom, ParseError
from storage.org import Right

OK = b"OK"
STREAM_ABOVE = 256 * 1024
CHUNK = 256 * 1024
_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")


def format_internaldate(when: _dt.datetime) -> bytes:
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    off = int(when.utcoffset().total_seconds() // 60)
    sign = b"+" if off >= 0 else b"-"
    off = abs(off)
    return b'"%02d-%s-%04d %02d:%02d:%02d %s%02d%02d"' % (
        when.day, _MONTHS[when.month - 1], when.year, when.hour, when.minute, when.second, sign, off // 60, off % 60,
    )


def sets_seen(item: FetchItem) -> bool:
    return (item.is_section and not item.peek) or item.name in (b"RFC822", b"RFC822.TEXT")


def needs_structure(item: FetchItem) -> bool:
    if item.name in (b"BODY", b"BODYSTRUCTURE", b"RFC822.HEADER", b"RFC822.TEXT"):
        return True
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


class _Flow:
    """Streaming producer registered on the transport for the duration of a FETCH."""

    def __init__(self) -> None:
        self.paused = False
        self.stopped = False
        self.waiter: defer.Deferred | None = None

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


class FetchCommand:
    async def do_FETCH(self, tag, seqset, items, modifiers, uid=False):
        sv = self.selected
        changedsince, vanished = parse_fetch_modifiers(modifiers, uid, b"QRESYNC" in self.enabled)
        if changedsince is not None or any(i.name == b"MODSEQ" for i in items):
            self.enable_condstore()
            if not any(i.name == b"MODSEQ" for i in items):
                items = items + [FetchItem(b"MODSEQ")]
        if uid and not any(i.name == b"UID" for i in items):
            items = [FetchItem(b"UID")] + items
        store = self.sc.store
        if vanished:
            changes = await deferToThread(store.changes, sv.folder_id, changedsince, sv.uidnext)
            top = max(sv.uidnext - 1, 1)
            gone = [u for u in changes.expunged if in_ranges(u, seqset, top)]
            if gone:
                self.write_lines([b"* VANISHED (EARLIER) " + format_set(gone)])
        uids = sv.resolve(seqset, uid=uid)
        rights = await self.authorize(sv.target, "read", "fetch")
        if not uids:
            return OK, b"FETCH completed"
        if not sv.readonly and Right.WRITE_FLAGS in rights and any(sets_seen(i) for i in items):
            res = await deferToThread(store.store_flags, sv.folder_id, uids, "add", frozenset({"\\Seen"}))
            for fu in res.updated:
                sv.note_own_flags(fu.uid, fu.modseq)
            if not any(i.name == b"FLAGS" for i in items):
                items = items + [FetchItem(b"FLAGS")]
            if self.condstore and not any(i.name == b"MODSEQ" for i in items):
                items = items + [FetchItem(b"MODSEQ")]
        fields = set()
        if any(i.name == b"ENVELOPE" for i in items):
            fields.add("envelope")
        if any(needs_structure(i) for i in items):
            fields.add("structure")
        flow = _Flow()
        self.transport.registerProducer(flow, True)
        try:
            await deferToThread(
                self._fetch_worker, list(sv.uids), set(sv.recent), sv.folder_id, uids, items, frozenset(fields), flow, changedsince
            )
        except FetchAborted:
            return None
        finally:
            if not self._closed:
                self.transport.unregisterProducer()
        return OK, b"FETCH completed"

    select_FETCH = (do_FETCH, A.arg_seqset, A.arg_fetchatt, A.opt_list)

    # -- worker thread -------------------------------------------------------------------------
    def _send(self, flow: _Flow, data: bytes):
        """Runs on the reactor: write, and hold the worker while the transport is full."""
        if self._closed or flow.stopped:
            raise FetchAborted()
        self.transport.write(data)
        if flow.paused:
            flow.waiter = defer.Deferred()
            return flow.waiter
        return None

    def _fetch_worker(self, view_uids, recent, folder_id, uids, items, fields, flow, changedsince=None) -> None:
        store = self.sc.store
        reactor = self.sc.reactor

        def send(data: bytes) -> None:
            if flow.stopped or self._closed:
                raise FetchAborted()
            blockingCallFromThread(reactor, self._send, flow, data)

        for batch in store.iter_fetch(folder_id, uids, fields=fields):
            out = bytearray()
            for m in batch:
                if changedsince is not None and m.modseq <= changedsince:
                    continue
                i = bisect.bisect_left(view_uids, m.uid)
                if i >= len(view_uids) or view_uids[i] != m.uid:
                    continue
                out += b"* %d FETCH (" % (i + 1)
                for n, item in enumerate(items):
                    if n:
                        out += b" "
                    big = self._render_item(m, item, recent, out)
                    if big is not None:  # stream a large section straight from the blob
                        start, end = big
                        out += b"{%d}\r\n" % (end - start)
                        send(bytes(out))
                        out = bytearray()
                        self._stream_blob(m.blob, start, end, send)
                out += b")\r\n"
                if len(out) > CHUNK:
                    send(bytes(out))
                    out = bytearray()
            if out:
                send(bytes(out))

    def _stream_blob(self, sha, start, end, send) -> None:
        with self.sc.store.open_blob(sha) as f:
            f.seek(start)
            left = end - start
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise IOError("stored message shorter than its metadata")
                send(chunk)
                left -= len(chunk)

    def _render_item(self, m, item: FetchItem, recent, out: bytearray):
        """Append ``NAME value`` to out; returns (start, end) when a big range must be streamed."""
        name = item.name
        if name == b"FLAGS":
            out += b"FLAGS (" + format_flags(m.flags, m.uid in recent) + b")"
        elif name == b"UID":
            out += b"UID %d" % m.uid
        elif name == b"INTERNALDATE":
            out += b"INTERNALDATE " + format_internaldate(m.internaldate)
        elif name == b"RFC822.SIZE":
            out += b"RFC822.SIZE %d" % m.size
        elif name == b"MODSEQ":
            out += b"MODSEQ (%d)" % m.modseq
        elif name == b"ENVELOPE":
            out += b"ENVELOPE " + render_envelope(m.envelope)
        elif name == b"BODYSTRUCTURE":
            out += b"BODYSTRUCTURE " + render_body(m.structure, True)
        elif name == b"BODY":
            out += b"BODY " + render_body(m.structure, False)
        elif name == b"RFC822":
            return self._section(m, FetchItem(b"BODY[]"), b"RFC822", out)
        elif name == b"RFC822.HEADER":
            return self._section(m, FetchItem(b"BODY[]", text=b"HEADER"), b"RFC822.HEADER", out)
        elif name == b"RFC822.TEXT":
            return self._section(m, FetchItem(b"BODY[]", text=b"TEXT"), b"RFC822.TEXT", out)
        else:
            return self._section(m, item, item.label(), out)
        return None

    def _section(self, m, item: FetchItem, label: bytes, out: bytearray):
        out += label + b" "
        try:
            if not item.part and not item.text:
                start, end = 0, m.size
            else:
                start, end = section_range(self._structure(m), m.size, item)
        except NoSuchPart:
            out += b'""'
            return None
        read = self.sc.store.read_blob
        if item.text.startswith(b"HEADER.FIELDS"):
            data = filter_fields(read(m.blob, start, end - start), item.fields, item.text == b"HEADER.FIELDS")
            data = apply_partial(data, item.partial)
        else:
            if item.partial is not None:
                off, length = item.partial
                start = min(end, start + off)
                end = min(end, start + length)
            if end - start > STREAM_ABOVE:
                return start, end
            data = read(m.blob, start, end - start) if end > start else b""
        out += b"{%d}\r\n" % len(data) + data
        return None

    def _structure(self, m) -> dict:
        if m.structure:
            return m.structure
        # No cached tree (should not happen): treat the message as one text part.
        head = self.sc.store.read_blob(m.blob, 0, min(m.size, 1024 * 1024))
        cut = head.find(b"\r\n\r\n")
        body_start = cut + 4 if cut >= 0 else m.size
        return {"type": "text", "subtype": "plain", "header_start": 0, "body_start": body_start, "body_end": m.size}
