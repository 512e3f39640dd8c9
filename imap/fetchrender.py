"""FETCH response text from ``Store.fetch_rows`` tuples, with no per-message objects.

Why: over a whole folder the cost of FETCH was per-message Python — a MessageInfo, a datetime,
and ENVELOPE / BODYSTRUCTURE rendered from JSON each time (10,000 ENVELOPEs: ~300 ms of CPU).
Here each simple item becomes a ``%`` format piece and a getter over the row tuple, so a message
costs one format operation; ENVELOPE, BODY and BODYSTRUCTURE are rendered once per message and
kept by the store (``put_rendered``), later FETCHes copy the kept bytes.

``RENDER_VERSION`` names the output of render_envelope/render_body: bump it whenever that output
changes, so renderings kept by an older server are ignored and replaced
(tests/test_imap_fetch.py pins the output of a sample to this number).
"""

from __future__ import annotations

import bisect
import datetime as _dt
from operator import itemgetter

from imap.bodystructure import render_body
from imap.envelope import render_envelope
from imap.fetchparse import FetchItem
from imap.session import format_flags
from storage.api import (
    ROW_BLOB, ROW_BODY, ROW_BODYSTRUCTURE, ROW_DATE, ROW_ENVELOPE, ROW_FLAGS, ROW_MODSEQ, ROW_REF, ROW_SIZE, ROW_UID,
    email_id,
)

RENDER_VERSION = 1
#: A FETCH that had to render at least this many messages keeps the renderings (fewer: a client
#: reading its new mail, rendered on the fly; a whole-folder FETCH is what the cache is for).
KEEP_AT_LEAST = 32
_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")
#: item name → (row position of its kept rendering, JSON field it is rendered from, render function)
RENDERED = {
    b"ENVELOPE": (ROW_ENVELOPE, "envelope", render_envelope),
    b"BODY": (ROW_BODY, "structure", lambda s: render_body(s, False)),
    b"BODYSTRUCTURE": (ROW_BODYSTRUCTURE, "structure", lambda s: render_body(s, True)),
}
_KIND_AT = {ROW_ENVELOPE: "envelope", ROW_BODY: "body", ROW_BODYSTRUCTURE: "bodystructure"}


def format_internaldate(when: _dt.datetime) -> bytes:
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    off = int(when.utcoffset().total_seconds() // 60)
    sign = b"+" if off >= 0 else b"-"
    off = abs(off)
    return b'"%02d-%s-%04d %02d:%02d:%02d %s%02d%02d"' % (
        when.day, _MONTHS[when.month - 1], when.year, when.hour, when.minute, when.second, sign, off // 60, off % 60,
    )


class FlagText:
    """``FLAGS (...)`` text by flag set: the store hands out one shared frozenset per distinct set.

    With the session's ``mailbox`` flags (imap.session.MailboxFlags), ``announce(row)`` gives
    the FLAGS and PERMANENTFLAGS lines to send before a row whose keywords the client was not
    told yet (RFC 3501 §7.2.6): another session may have set them after this one's view was last
    brought up to date. Checked once per distinct flag set."""

    def __init__(self, recent: set[int], mailbox=None) -> None:
        self.recent = recent
        self.plain: dict[frozenset, bytes] = {}
        self.mailbox = mailbox
        self.checked: set[frozenset] = set()

    def announce(self, row: tuple) -> bytes:
        flags = row[ROW_FLAGS]
        if self.mailbox is None or flags in self.checked:
            return b""
        self.checked.add(flags)
        return self.mailbox.announce(flags)

    def __call__(self, row: tuple) -> bytes:
        flags = row[ROW_FLAGS]
        if self.recent and row[ROW_UID] in self.recent:
            return format_flags(flags, True)
        text = self.plain.get(flags)
        if text is None:
            text = self.plain[flags] = format_flags(flags)
        return text


def simple_piece(item: FetchItem, flag_text: FlagText):
    """(format piece, getter) for an item answered from the row alone; None for sections."""
    name = item.name
    if name == b"UID":
        return b"UID %d", itemgetter(ROW_UID)
    if name == b"FLAGS":
        return b"FLAGS (%s)", flag_text
    if name == b"MODSEQ":
        return b"MODSEQ (%d)", itemgetter(ROW_MODSEQ)
    if name == b"RFC822.SIZE":
        return b"RFC822.SIZE %d", itemgetter(ROW_SIZE)
    if name == b"INTERNALDATE":
        return b"INTERNALDATE %s", lambda row: format_internaldate(row[ROW_DATE])
    if name in RENDERED:
        return name + b" %s", itemgetter(RENDERED[name][0])
    if name == b"EMAILID":  # RFC 8474 §5.1
        return b"EMAILID (%s)", lambda row: email_id(row[ROW_BLOB]).encode("ascii")
    if name == b"THREADID":  # RFC 8474 §5.2: NIL, this server does not keep threads
        return b"THREADID %s", lambda row: b"NIL"
    return None


def needs_blob(items) -> bool:
    """Whether the row must carry the body's hash even for items answered from the row alone."""
    return any(i.name == b"EMAILID" for i in items)


def save_date_piece(saved: dict):
    """(format piece, getter) for SAVEDATE (RFC 8514 §3): NIL for a message without one."""

    def getter(row: tuple) -> bytes:
        when = saved.get(row[ROW_UID])
        return b"NIL" if when is None else format_internaldate(when)

    return b"SAVEDATE %s", getter


def renderings_needed(items) -> dict[int, tuple[str, object]]:
    """Row position → (JSON field, render function) for the kept renderings these items use."""
    return {RENDERED[i.name][0]: RENDERED[i.name][1:] for i in items if i.name in RENDERED}


def rendered_kinds(needed: dict[int, tuple[str, object]]) -> frozenset[str]:
    """The ``Store.fetch_rows`` kinds for these row positions."""
    return frozenset(_KIND_AT[pos] for pos in needed)


def fill_renderings(store, rows: list[tuple], needed: dict[int, tuple[str, object]]) -> tuple[list[tuple], list[tuple]]:
    """Render what the store had not kept: (rows completed, items for ``store.messages.put_rendered``)."""
    if len(needed) == 1:
        (pos,) = needed
        missing = [i for i, row in enumerate(rows) if row[pos] is None]
    else:
        missing = [i for i, row in enumerate(rows) if any(row[pos] is None for pos in needed)]
    if not missing:
        return rows, []
    fields = frozenset(field for field, _ in needed.values())
    meta = store.messages.body_meta([rows[i][ROW_BLOB] for i in missing], fields)
    rows = list(rows)
    keep = []
    for i in missing:
        row = rows[i]
        envelope, structure = meta.get(row[ROW_BLOB], (None, None))
        new = list(row)
        for pos, (field, render) in needed.items():
            if new[pos] is None:
                new[pos] = render(envelope if field == "envelope" else structure)
        rows[i] = tuple(new)
        keep.append((row[ROW_REF], row[ROW_BLOB], new[ROW_ENVELOPE], new[ROW_BODY], new[ROW_BODYSTRUCTURE]))
    return rows, keep


class Numbering:
    """Sequence numbers of ascending rows in the session's view (uids ascending too): the next
    row is nearly always the next number, so a binary search is the exception."""

    def __init__(self, view_uids: list[int]) -> None:
        self.uids = view_uids
        self.n = len(view_uids)
        self.at = 0

    def msn(self, uid: int) -> int:
        """1-based number, or 0 when the uid is not in the view."""
        i = self.at
        if i >= self.n or self.uids[i] != uid:
            i = bisect.bisect_left(self.uids, uid, i)
            if i >= self.n or self.uids[i] != uid:
                self.at = i
                return 0
        self.at = i + 1
        return i + 1


def render_simple(
    rows, fmt: bytes, getters, numbering: Numbering, changedsince: int | None, flag_text: FlagText | None = None
) -> bytes:
    """All lines of a batch whose items are all simple pieces.

    The loop is the whole cost of ``UID FETCH 1:* (FLAGS)`` over a large folder, so it is
    written for it: the next row is nearly always the view's next UID (numbered without a call),
    and a response of one or two items is formatted without building a list per row."""
    out = []
    append = out.append
    announce = flag_text.announce if flag_text is not None and flag_text.mailbox is not None else None
    view, n, at = numbering.uids, numbering.n, numbering.at
    if len(getters) == 1:
        g0, g1 = getters[0], None
    elif len(getters) == 2:
        g0, g1 = getters
    else:
        g0 = g1 = None
    for row in rows:
        if changedsince is not None and row[ROW_MODSEQ] <= changedsince:
            continue
        uid = row[ROW_UID]
        if at < n and view[at] == uid:
            at += 1
            msn = at
        else:
            numbering.at = at
            msn = numbering.msn(uid)
            at = numbering.at
            if not msn:
                continue
        if announce is not None and (told := announce(row)):
            append(told)
        if g1 is not None:
            append(fmt % (msn, g0(row), g1(row)))
        elif g0 is not None:
            append(fmt % (msn, g0(row)))
        else:
            append(fmt % (msn, *[g(row) for g in getters]))
    numbering.at = at
    return b"".join(out)
