"""SELECT/EXAMINE and the selected-state commands except FETCH: CHECK, CLOSE, UNSELECT,
EXPUNGE (and UID EXPUNGE), SEARCH, STORE, COPY, MOVE, IDLE; plus the session's change polling.
"""

from __future__ import annotations

from twisted.internet.threads import deferToThread

from imap.args import ArgParsers as A
from imap.qresync import parse_select_params, resync_lines
from imap.session import SelectedView, format_flags, format_set, parse_seqset
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


class SelectedCommands:
    # -- selection -------------------------------------------------------------------------------
    def deselect(self) -> None:
        sv, self.selected = self.selected, None
        if sv is not None:
            self.sc.hub.unwatch(sv.folder_id, self)
        if self.state == "select":
            self.state = "auth"

    async def _select(self, tag, name, readonly, params):
        opts = parse_select_params(params, b"QRESYNC" in self.enabled)
        if self.selected is not None:
            self.untagged(b"OK [CLOSED] Previous mailbox closed")
        self.deselect()
        if opts.condstore:
            self.enable_condstore()
        target, folder, rights = await self.get_folder(name, "read", "examine" if readonly else "select")
        store = self.sc.store
        view = await deferToThread(store.messages.open_view, folder.id, claim_recent=not readonly)
        if self._closed:
            return None
        sv = SelectedView(view, readonly)
        sv.target = target
        self.selected = sv
        self.state = "select"
        self.sc.hub.watch(sv.folder_id, self)
        lines = [
            b"* FLAGS (" + SYSTEM_FLAGS + b")",
            b"* OK [PERMANENTFLAGS (" + (b"" if readonly else permanent_flags(rights)) + b")] Flags permitted",
            b"* %d EXISTS" % sv.exists,
            b"* %d RECENT" % len(sv.recent),
        ]
        if view.first_unseen_uid is not None and sv.msn_of(view.first_unseen_uid):
            lines.append(b"* OK [UNSEEN %d] First unseen" % sv.msn_of(view.first_unseen_uid))
        lines.append(b"* OK [UIDVALIDITY %d] UIDs valid" % view.folder.uidvalidity)
        lines.append(b"* OK [UIDNEXT %d] Predicted next UID" % sv.uidnext)
        lines.append(b"* OK [HIGHESTMODSEQ %d] Highest" % sv.highestmodseq)
        if opts.qresync is not None and opts.qresync[0] == view.folder.uidvalidity:
            changes = await deferToThread(store.messages.changes, sv.folder_id, opts.qresync[1], sv.uidnext)
            lines.extend(resync_lines(sv, changes, opts.qresync[2]))
        self.write_lines(lines)
        verb = b"EXAMINE" if readonly else b"SELECT"
        return OK, (b"[READ-ONLY] " if readonly else b"[READ-WRITE] ") + verb + b" completed"

    def do_SELECT(self, tag, name, params):
        return self._select(tag, name, False, params)

    def do_EXAMINE(self, tag, name, params):
        return self._select(tag, name, True, params)

    auth_SELECT = select_SELECT = (do_SELECT, A.arg_mailbox, A.opt_list)
    auth_EXAMINE = select_EXAMINE = (do_EXAMINE, A.arg_mailbox, A.opt_list)

    # -- change polling ----------------------------------------------------------------------------
    async def poll_changes(self) -> None:
        sv = self.selected
        if sv is None:
            return
        ch = await deferToThread(self.sc.store.messages.changes, sv.folder_id, sv.highestmodseq, sv.uidnext)
        if self.selected is sv:
            sv.apply(ch)

    def changes_arrived(self, sv, changes) -> None:
        """From the ChangeHub, on the reactor thread: another commit touched our folder."""
        if self.selected is sv:
            sv.apply(changes)
            if self.idling:
                self.flush_updates(allow_expunge=True)

    # -- simple commands ---------------------------------------------------------------------------
    async def do_CHECK(self, tag):
        await self.poll_changes()
        return OK, b"CHECK completed"

    async def do_CLOSE(self, tag):
        sv = self.selected
        if not sv.readonly and await self.may(sv.target, "delete", "close-expunge"):
            await deferToThread(self.sc.store.messages.expunge, sv.folder_id, None)
        self.deselect()
        return OK, b"CLOSE completed"

    def do_UNSELECT(self, tag):
        self.deselect()
        return OK, b"UNSELECT completed"

    select_CHECK = (do_CHECK,)
    select_CLOSE = (do_CLOSE,)
    select_UNSELECT = (do_UNSELECT,)

    async def do_EXPUNGE(self, tag, rest, uid=False):
        sv = self.selected
        uids = None
        if uid:
            if len(rest) != 1 or not isinstance(rest[0], Atom):
                raise ParseError("UID EXPUNGE needs a UID set")
            uids = sv.resolve(parse_seqset(bytes(rest[0])), uid=True)
        elif rest:
            raise ParseError("EXPUNGE takes no arguments")
        if sv.readonly:
            return READ_ONLY
        await self.authorize(sv.target, "delete", "expunge")
        if uids == []:
            return OK, b"EXPUNGE completed"
        removed = await deferToThread(self.sc.store.messages.expunge, sv.folder_id, uids)
        sv.expunged_now(removed)
        return OK, b"EXPUNGE completed"

    select_EXPUNGE = (do_EXPUNGE, A.arg_rest)

    # -- STORE -----------------------------------------------------------------------------------
    async def do_STORE(self, tag, seqset, modifiers, action, flags, uid=False):
        sv = self.selected
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
            self.enable_condstore()
        uids = sv.resolve(seqset, uid=uid)
        if sv.readonly:
            return READ_ONLY
        await self.authorize(sv.target, store_needs(modes[base], flags), "store")
        if not uids:
            return OK, b"STORE completed"
        store = self.sc.store
        res = await deferToThread(store.messages.store_flags, sv.folder_id, uids, modes[base], flags, unchanged_since=unchanged_since)
        current = {}
        for fu in res.updated:
            sv.note_own_flags(fu.uid, fu.modseq)
            current[fu.uid] = (fu.flags, fu.modseq)
        failed = set(res.failed_unchanged_since)
        if not silent or self.condstore:
            missing = [u for u in uids if u not in current and u not in failed] if not silent else []
            if missing:
                for m in await deferToThread(store.messages.fetch, sv.folder_id, missing):
                    current[m.uid] = (m.flags, m.modseq)
            lines = []
            for u in sorted(current):
                msn = sv.msn_of(u)
                if msn is None:
                    continue
                flags_part = b"" if silent else b"FLAGS (%s)" % format_flags(current[u][0], u in sv.recent)
                extra = [flags_part] if flags_part else []
                if uid:
                    extra.append(b"UID %d" % u)
                if self.condstore:
                    extra.append(b"MODSEQ (%d)" % current[u][1])
                lines.append(b"* %d FETCH (%s)" % (msn, b" ".join(extra)))
            self.write_lines(lines)
        if failed:
            nums = sorted(failed) if uid else sorted(n for n in map(sv.msn_of, failed) if n)
            return OK, b"[MODIFIED " + format_set(nums) + b"] Conditional STORE failed"
        return OK, b"STORE completed"

    select_STORE = (do_STORE, A.arg_seqset, A.opt_list, A.arg_atom, A.arg_flaglist)

    # -- COPY / MOVE -----------------------------------------------------------------------------
    async def _copy(self, seqset, name, uid, move):
        sv = self.selected
        uids = sv.resolve(seqset, uid=uid)
        if move and sv.readonly:
            return READ_ONLY
        verb = b"MOVE" if move else b"COPY"
        await self.authorize(sv.target, "delete" if move else "read", verb.decode().lower() + "-out")
        try:
            target, dst, _rights = await self.get_folder(name, "head", verb.decode().lower() + "-in")
        except NotFound:
            return NO, b"[TRYCREATE] No such mailbox"
        if not uids:
            return OK, verb + b" completed"
        limit = await self.quota_limit(target.owner_id)
        res = await deferToThread(self.sc.store.messages.copy, sv.folder_id, uids, dst.id, move=move, quota_limit=limit)
        code = b"[COPYUID %d %s %s]" % (
            res.uidvalidity, format_set([s for s, _ in res.mapping]), format_set([d for _, d in res.mapping])
        ) if res.mapping else b""
        if move:
            sv.expunged_now([s for s, _ in res.mapping])
            if code:
                self.untagged(b"OK " + code + b" Moved")
            code = b""
        if dst.id == sv.folder_id:
            await self.poll_changes()
        return OK, (code + b" " if code else b"") + verb + b" completed"

    def do_COPY(self, tag, seqset, name, uid=False):
        return self._copy(seqset, name, uid, False)

    def do_MOVE(self, tag, seqset, name, uid=False):
        return self._copy(seqset, name, uid, True)

    select_COPY = (do_COPY, A.arg_seqset, A.arg_mailbox)
    select_MOVE = (do_MOVE, A.arg_seqset, A.arg_mailbox)

    # -- IDLE (RFC 2177) ---------------------------------------------------------------------------
    async def do_IDLE(self, tag):
        self.write_lines([b"+ idling"])
        self.idling = True
        try:
            # The ChangeHub keeps the view current (imap/notify.py): what it brought is sent now.
            self.flush_updates(allow_expunge=True)
            while True:
                line = await self.next_line()
                if line.strip().upper() == b"DONE":
                    break
                self.untagged(b"BAD Expected DONE")
        finally:
            self.idling = False
        return OK, b"IDLE terminated"

    auth_IDLE = select_IDLE = (do_IDLE,)
