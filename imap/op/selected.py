"""SELECT/EXAMINE and the selected-state commands except FETCH and SEARCH/SORT: CHECK, CLOSE,
UNSELECT, EXPUNGE (and UID EXPUNGE), STORE, COPY, MOVE, IDLE; plus the session's change polling.
"""

from __future__ import annotations

from twisted.internet.threads import deferToThread

from imap.access import authorize, get_folder, may
from imap.op.quota import quota_limit
from imap.qresync import parse_select_params, resync_lines
from imap.session import SelectedView, format_flags, format_set, parse_seqset
from imap.state import SELECTED, Session
from imap.wire import Atom, ParseError
from storage.errors import NotFound
from storage.api import Right

OK, NO, BAD = b"OK", b"NO", b"BAD"
READ_ONLY = (NO, b"[READ-ONLY] Mailbox is read-only")
SYSTEM_FLAGS = b"\\Answered \\Flagged \\Deleted \\Seen \\Draft"


def permanent_flags(rights) -> bytes:
    """What STORE may change with these rights (all of them in one's own mailbox)."""
    flags = []
    if Right.WRITE_FLAGS in rights:
        flags += [b"\\Answered", b"\\Flagged"]
    if Right.DELETE in rights:
        flags.append(b"\\Deleted")
    if Right.WRITE_FLAGS in rights:
        flags += [b"\\Seen", b"\\Draft", b"\\*"]
    return b" ".join(flags)


def store_needs(mode: str, flags) -> str:
    """The access a STORE needs: \\Deleted is the delete right; FLAGS (replace) may clear it."""
    if mode == "set":
        return "flags-and-delete"
    if "\\Deleted" in flags:
        return "flags-and-delete" if len(flags) > 1 else "delete"
    return "write-flags"


# -- selection -------------------------------------------------------------------------------
async def _select(s: Session, tag: bytes, named, readonly, params):
    name, as_sent = named  # imap.args.arg_mailbox_as_sent
    opts = parse_select_params(params, b"QRESYNC" in s.enabled)
    if s.selected is not None:
        s.untagged(b"OK [CLOSED] Previous mailbox closed")
    s.deselect()
    if opts.condstore:
        s.enable_condstore()
    target, folder, rights = await get_folder(s, name, "read", "examine" if readonly else "select")
    store = s.ctx.store
    if folder.name.upper() == "INBOX":  # R-OPS-1: a mailbox check (of a unit's INBOX by a delegate too)
        store.usage.count(folder.account_id, "checks")
    # IMAP4rev2 has no \Recent: such a session leaves the claim to rev1 sessions.
    view = await deferToThread(store.messages.open_view, folder.id, claim_recent=not readonly and not s.rev2)
    if s.closed:
        return None
    sv = SelectedView(view, readonly)
    if s.rev2:
        sv.drop_recent()
    sv.target = target
    sv.permanent = b"" if readonly else permanent_flags(rights)
    s.selected = sv
    s.state = SELECTED
    if s.notify is not None:
        s.notify.selected_now(sv)
    s.ctx.hub.watch(sv.folder_id, s)
    lines = [*sv.flags_lines(), b"* %d EXISTS" % sv.exists]
    if s.rev2:  # RFC 9051 §6.3.2: a LIST response for the mailbox; RECENT and UNSEEN are gone
        from imap.op.listing import list_response  # listing → folders → selected: import when used

        line = await list_response(s, target.client_name())
        if as_sent is not None:
            line += b' ("OLDNAME" (' + s.wire_name(as_sent) + b"))"
        lines.append(line)
    else:
        lines.append(b"* %d RECENT" % len(sv.recent))
    if not s.rev2 and view.first_unseen_uid is not None and sv.msn_of(view.first_unseen_uid):
        lines.append(b"* OK [UNSEEN %d] First unseen" % sv.msn_of(view.first_unseen_uid))
    lines.append(b"* OK [UIDVALIDITY %d] UIDs valid" % view.folder.uidvalidity)
    lines.append(b"* OK [UIDNEXT %d] Predicted next UID" % sv.uidnext)
    lines.append(b"* OK [HIGHESTMODSEQ %d] Highest" % sv.highestmodseq)
    lines.append(b"* OK [MAILBOXID (%s)] Ok" % view.folder.mailboxid.encode("ascii"))  # RFC 8474 §4
    if opts.qresync is not None and opts.qresync[0] == view.folder.uidvalidity:
        changes = await deferToThread(store.messages.changes, sv.folder_id, opts.qresync[1], sv.uidnext)
        lines.extend(resync_lines(sv, changes, opts.qresync[2]))
    s.write_lines(lines)
    verb = b"EXAMINE" if readonly else b"SELECT"
    return OK, (b"[READ-ONLY] " if readonly else b"[READ-WRITE] ") + verb + b" completed"


def select(s: Session, tag: bytes, name, params):
    return _select(s, tag, name, False, params)


def examine(s: Session, tag: bytes, name, params):
    return _select(s, tag, name, True, params)


# -- change polling ----------------------------------------------------------------------------
async def poll_changes(s: Session) -> None:
    sv = s.selected
    if sv is None:
        return
    ch = await deferToThread(s.ctx.store.messages.changes, sv.folder_id, sv.highestmodseq, sv.uidnext)
    if s.selected is sv:
        sv.apply(ch)
        s.ctx.hub.claim([s])
        await recent_settled(s)


async def recent_settled(s: Session) -> None:
    """Wait for a \\Recent claim on its way (imap/notify.py): a message the client is told
    of shows \\Recent, or not, for good."""
    sv = s.selected
    while sv is not None and sv.claiming is not None:
        await sv.claiming


# -- simple commands ---------------------------------------------------------------------------
async def check(s: Session, tag: bytes):
    await poll_changes(s)
    return OK, b"CHECK completed"


async def close(s: Session, tag: bytes):
    sv = s.selected
    if not sv.readonly and await may(s, sv.target, "delete", "close-expunge"):
        await deferToThread(s.ctx.store.messages.expunge, sv.folder_id, None)
    s.deselect()
    return OK, b"CLOSE completed"


def unselect(s: Session, tag: bytes):
    s.deselect()
    return OK, b"UNSELECT completed"


async def expunge(s: Session, tag: bytes, rest, uid=False):
    sv = s.selected
    uids = None
    if uid:
        if len(rest) != 1 or not isinstance(rest[0], Atom):
            raise ParseError("UID EXPUNGE needs a UID set")
        uids = sv.resolve(parse_seqset(bytes(rest[0])), uid=True)
    elif rest:
        raise ParseError("EXPUNGE takes no arguments")
    if sv.readonly:
        return READ_ONLY
    await authorize(s, sv.target, "delete", "expunge")
    if uids == []:
        return OK, b"EXPUNGE completed"
    removed = await deferToThread(s.ctx.store.messages.expunge, sv.folder_id, uids)
    sv.expunged_now(removed)
    return OK, b"EXPUNGE completed"


# -- STORE -----------------------------------------------------------------------------------
async def store(s: Session, tag: bytes, seqset, modifiers, action, flags, uid=False):
    sv = s.selected
    act = action.upper()
    silent = act.endswith(b".SILENT")
    base = act[:-7] if silent else act
    modes = {b"FLAGS": "set", b"+FLAGS": "add", b"-FLAGS": "remove"}
    if base not in modes:
        raise ParseError("STORE expects FLAGS, +FLAGS or -FLAGS")
    unchanged_since = None
    if modifiers is not None:
        if len(modifiers) != 2 or bytes(modifiers[0]).upper() != b"UNCHANGEDSINCE" or not bytes(modifiers[1]).isdigit():
            raise ParseError("Unknown STORE modifier")
        unchanged_since = int(modifiers[1])
        s.enable_condstore()
    uids = sv.resolve(seqset, uid=uid)
    if sv.readonly:
        return READ_ONLY
    await authorize(s, sv.target, store_needs(modes[base], flags), "store")
    if not uids:
        return OK, b"STORE completed"
    store = s.ctx.store
    res = await deferToThread(store.messages.store_flags, sv.folder_id, uids, modes[base], flags, unchanged_since=unchanged_since)
    current, folded = {}, {}
    for fu in res.updated:
        told = max(sv.highestmodseq, sv.reported_modseq.get(fu.uid, 0))  # what the client knows of
        pending = sv.pending_flags.get(fu.uid)  # this very change, heard of already, is not another's
        if silent and ((pending is not None and pending[1] < fu.modseq) or fu.before > told):
            # A .SILENT answer tells nothing, but this message also carries another session's
            # change the client was not told: its flags go out all the same (RFC 3501 §7.4.2).
            folded[fu.uid] = (fu.flags, fu.modseq)
        sv.note_own_flags(fu.uid, fu.modseq)
        sv.note_keywords(fu.flags)
        current[fu.uid] = (fu.flags, fu.modseq)
    failed = set(res.failed_unchanged_since)
    if not silent or s.condstore or folded:
        missing = [u for u in uids if u not in current and u not in failed] if not silent else []
        if missing:
            for m in await deferToThread(store.messages.fetch, sv.folder_id, missing):
                current[m.uid] = (m.flags, m.modseq)
                sv.note_keywords(m.flags)
        if sv.keywords_grew:  # a keyword new to the mailbox: FLAGS before the FETCH that shows it
            s.write_lines(sv.flags_lines())
        lines = []
        for u in sorted(current):
            msn = sv.msn_of(u)
            if msn is None or (silent and not s.condstore and u not in folded):
                continue
            flags_part = b"" if silent and u not in folded else b"FLAGS (%s)" % format_flags(current[u][0], u in sv.recent)
            extra = [flags_part] if flags_part else []
            if uid:
                extra.append(b"UID %d" % u)
            if s.condstore:
                extra.append(b"MODSEQ (%d)" % current[u][1])
            lines.append(b"* %d FETCH (%s)" % (msn, b" ".join(extra)))
        s.write_lines(lines)
    if failed:
        nums = sorted(failed) if uid else sorted(n for n in map(sv.msn_of, failed) if n)
        return OK, b"[MODIFIED " + format_set(nums) + b"] Conditional STORE failed"
    return OK, b"STORE completed"


# -- COPY / MOVE -----------------------------------------------------------------------------
async def _copy(s: Session, seqset, name, uid, move):
    sv = s.selected
    uids = sv.resolve(seqset, uid=uid)
    if move and sv.readonly:
        return READ_ONLY
    verb = b"MOVE" if move else b"COPY"
    await authorize(s, sv.target, "delete" if move else "read", verb.decode().lower() + "-out")
    try:
        target, dst, _rights = await get_folder(s, name, "head", verb.decode().lower() + "-in")
    except NotFound:
        return NO, b"[TRYCREATE] No such mailbox"
    if not uids:
        return OK, verb + b" completed"
    limit = await quota_limit(s, target.owner_id)
    res = await deferToThread(s.ctx.store.messages.copy, sv.folder_id, uids, dst.id, move=move, quota_limit=limit)
    code = b"[COPYUID %d %s %s]" % (
        res.uidvalidity, format_set([src for src, _ in res.mapping]), format_set([d for _, d in res.mapping])
    ) if res.mapping else b""
    if move:
        sv.expunged_now([src for src, _ in res.mapping])
        if code:
            s.untagged(b"OK " + code + b" Moved")
        code = b""
    if dst.id == sv.folder_id:
        await poll_changes(s)
    return OK, (code + b" " if code else b"") + verb + b" completed"


def copy(s: Session, tag: bytes, seqset, name, uid=False):
    return _copy(s, seqset, name, uid, False)


def move(s: Session, tag: bytes, seqset, name, uid=False):
    return _copy(s, seqset, name, uid, True)


# -- IDLE (RFC 2177) ---------------------------------------------------------------------------
async def idle(s: Session, tag: bytes):
    s.write_lines([b"+ idling"])
    s.idling = True
    try:
        # The ChangeHub keeps the view current (imap/notify.py): what it brought is sent now.
        s.updates_waiting()
        while True:
            line = await s.conn.next_line()
            if line.strip().upper() == b"DONE":
                break
            s.untagged(b"BAD Expected DONE")
        if s.notify is not None:
            await s.notify.settled()
    finally:
        s.idling = False
    return OK, b"IDLE terminated"
