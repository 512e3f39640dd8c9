"""FETCH (RFC 3501 §6.4.5, CONDSTORE/QRESYNC modifiers, PARTIAL RFC 9394): the checks and implicit ``\\Seen`` here;
the rendering and streaming of the response in imap/fetch.py (``FetchJob``).
"""

from __future__ import annotations

from twisted.internet.threads import deferToThread

from imap.access import authorize
from imap.fetch import FetchAborted, FetchJob, Flow, parse_fetch_modifiers, sets_seen
from imap.fetchparse import FetchItem
from imap.op.search import parse_partial, partial_slice
from imap.qresync import in_ranges
from imap.session import format_set
from imap.state import Session
from imap.wire import Atom, ParseError
from storage.api import Right

OK = b"OK"


def take_partial(modifiers) -> tuple[tuple[int, int] | None, list | None]:
    """RFC 9394 §3.2 ``PARTIAL range`` out of the FETCH modifiers: (range, the other modifiers)."""
    if not modifiers:
        return None, modifiers
    rest, rng, i = [], None, 0
    while i < len(modifiers):
        tok = modifiers[i]
        if isinstance(tok, Atom) and bytes(tok).upper() == b"PARTIAL":
            if rng is not None or i + 1 >= len(modifiers) or not isinstance(modifiers[i + 1], Atom):
                raise ParseError("PARTIAL needs one range")
            rng = parse_partial(bytes(modifiers[i + 1]))
            i += 2
            continue
        rest.append(tok)
        i += 1
    return rng, rest


async def fetch(s: Session, tag: bytes, seqset, items, modifiers, uid=False):
    sv = s.selected
    partial, modifiers = take_partial(modifiers)
    changedsince, vanished = parse_fetch_modifiers(modifiers, uid, b"QRESYNC" in s.enabled)
    if changedsince is not None or any(i.name == b"MODSEQ" for i in items):
        s.enable_condstore()
        if not any(i.name == b"MODSEQ" for i in items):
            items = items + [FetchItem(b"MODSEQ")]
    if uid and not any(i.name == b"UID" for i in items):
        items = [FetchItem(b"UID")] + items
    store = s.ctx.store
    if vanished:
        changes = await deferToThread(store.messages.changes, sv.folder_id, changedsince, sv.uidnext)
        top = max(sv.uidnext - 1, 1)
        gone = [u for u in changes.expunged if in_ranges(u, seqset, top)]
        if gone:
            s.write_lines([b"* VANISHED (EARLIER) " + format_set(gone)])
    uids = sv.resolve(seqset, uid=uid)
    if partial is not None:  # positions in the set's messages, in UID order
        uids = partial_slice(sorted(uids), partial)
    rights = await authorize(s, sv.target, "read", "fetch")
    if not uids:
        return OK, b"FETCH completed"
    if not sv.readonly and Right.WRITE_FLAGS in rights and any(sets_seen(i) for i in items):
        res = await deferToThread(store.messages.store_flags, sv.folder_id, uids, "add", frozenset({"\\Seen"}))
        for fu in res.updated:
            sv.note_own_flags(fu.uid, fu.modseq)
        if not any(i.name == b"FLAGS" for i in items):
            items = items + [FetchItem(b"FLAGS")]
        if s.condstore and not any(i.name == b"MODSEQ" for i in items):
            items = items + [FetchItem(b"MODSEQ")]
    conn = s.conn
    flow = Flow()
    job = FetchJob(conn, store, s.ctx.reactor, flow)
    conn.transport.registerProducer(flow, True)
    mailbox = sv.mailbox_flags()
    try:
        tail = await deferToThread(job.run, sv.uids[:], set(sv.recent), sv.folder_id, uids, items, changedsince, mailbox)
        sv.told_keywords(mailbox)
        if not conn.closed and tail:
            conn.write_now(tail)
        if job.unknown_cte is not None:
            return b"NO", b"[UNKNOWN-CTE] Cannot decode the content-transfer-encoding " + job.unknown_cte.encode("ascii", "replace")[:40]
    except FetchAborted:
        return None
    finally:
        if not conn.closed:
            conn.transport.unregisterProducer()
    return OK, b"FETCH completed"
