"""Authenticated-state folder commands: CREATE (with RFC 6154 USE), DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE, STATUS, NAMESPACE, APPEND (LIST/LSUB are in imap/cmd_list.py). Folder names are NFC in the store, modified UTF-7 on the
wire; the hierarchy delimiter is "/". Store errors surface through imap/errors.py (Twisted
ignored failures from create() and answered OK).
"""

from __future__ import annotations

from twisted.internet.threads import deferToThread

from imap.access import SHARED_ROOT
from imap.args import ArgParsers as A
from imap.wire import Atom, FileLiteral, ParseError
from storage.errors import NotFound

OK, NO = b"OK", b"NO"
DELIM = "/"
_STATUS_ITEMS = (b"MESSAGES", b"RECENT", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN", b"HIGHESTMODSEQ", b"SIZE")
#: Special uses a folder can be created with (\All and \Flagged would be virtual folders).
CREATABLE_USES = {"\\archive": "\\Archive", "\\drafts": "\\Drafts", "\\junk": "\\Junk", "\\sent": "\\Sent", "\\trash": "\\Trash"}


def check_new_name(name: str) -> str:
    name = name.rstrip(DELIM)
    if not name or name.startswith(DELIM) or DELIM * 2 in name or any(c in name for c in "%*") or any(ord(c) < 0x20 for c in name):
        raise ParseError("Invalid mailbox name")
    return name


class FolderCommands:
    async def get_folder(self, name: str, need: str = "read", action: str = ""):
        """(target, folder, rights) for a client folder name, the access checked and recorded."""
        target = await self.resolve(name)
        rights = await self.authorize(target, need, action or need)
        folder = await deferToThread(self.sc.store.folders.get_folder, target.owner_id, target.name)
        return target, folder, rights

    async def quota_limit(self, owner_id: int) -> int | None:
        return await deferToThread(self.limit_sync, owner_id)

    # -- CREATE / DELETE / RENAME / (UN)SUBSCRIBE ----------------------------------------------
    async def do_CREATE(self, tag, name, params):
        name = check_new_name(name)
        target = await self.resolve(name)
        if target.name.upper() == "INBOX":
            return NO, b"[ALREADYEXISTS] INBOX always exists"
        use = None
        if params is not None:
            if len(params) != 2 or not isinstance(params[0], Atom) or params[0].upper() != b"USE" or not isinstance(params[1], list):
                raise ParseError("Expected (USE (attributes))")
            uses = [CREATABLE_USES.get(bytes(u).decode("ascii", "replace").lower()) for u in params[1]]
            if len(uses) != 1 or uses[0] is None:
                return NO, b"[USEATTR] Only one of \\Archive \\Drafts \\Junk \\Sent \\Trash"
            use = uses[0]
        await self.authorize(target, "head", "create")
        await deferToThread(self.sc.store.folders.create_folder, target.owner_id, target.name, special_use=use)
        return OK, b"CREATE completed"

    async def do_DELETE(self, tag, name):
        target = await self.resolve(name)
        await self.authorize(target, "head", "delete-folder")
        sv = self.selected
        if sv is not None and sv.target.owner_id == target.owner_id and sv.folder.name == target.name:
            self.deselect()
            self.state = "auth"
        await deferToThread(self.sc.store.folders.delete_folder, target.owner_id, target.name)
        return OK, b"DELETE completed"

    async def do_RENAME(self, tag, old, new):
        new = check_new_name(new)
        src, dst = await self.resolve(old), await self.resolve(new)
        if src.owner_id != dst.owner_id:
            return NO, b"[CANNOT] Folders cannot be renamed into another mailbox"
        await self.authorize(src, "head", "rename-folder")
        await deferToThread(self.sc.store.folders.rename_folder, src.owner_id, src.name, dst.name)
        return OK, b"RENAME completed"

    async def _subscribe(self, name: str, on: bool):
        target = await self.resolve(name)
        if target.owner_id != self.account.id:
            return NO, b"[CANNOT] Shared folders are always listed; subscriptions are personal"
        await deferToThread(self.sc.store.folders.set_subscribed, self.account.id, name, on)
        return OK, (b"SUBSCRIBE" if on else b"UNSUBSCRIBE") + b" completed"

    def do_SUBSCRIBE(self, tag, name):
        return self._subscribe(name, True)

    def do_UNSUBSCRIBE(self, tag, name):
        return self._subscribe(name, False)

    auth_CREATE = select_CREATE = (do_CREATE, A.arg_mailbox, A.opt_list)
    auth_DELETE = select_DELETE = (do_DELETE, A.arg_mailbox)
    auth_RENAME = select_RENAME = (do_RENAME, A.arg_mailbox, A.arg_mailbox)
    auth_SUBSCRIBE = select_SUBSCRIBE = (do_SUBSCRIBE, A.arg_mailbox)
    auth_UNSUBSCRIBE = select_UNSUBSCRIBE = (do_UNSUBSCRIBE, A.arg_mailbox)

    # -- STATUS / NAMESPACE --------------------------------------------------------------------
    async def do_STATUS(self, tag, name, items):
        wanted = []
        for it in items:
            key = bytes(it).upper() if isinstance(it, Atom) else b""
            if key not in _STATUS_ITEMS:
                raise ParseError("Unknown STATUS item")
            wanted.append(key)
            if key == b"HIGHESTMODSEQ":
                self.enable_condstore()
        _target, folder, _rights = await self.get_folder(name, "read", "status")
        st = await deferToThread(self.sc.store.folders.folder_status, folder.id)
        self.write_lines([self.status_line(st, wanted, name)])
        return OK, b"STATUS completed"

    def status_line(self, st, wanted, name: str) -> bytes:
        values = {
            b"MESSAGES": st.messages, b"RECENT": st.recent, b"UIDNEXT": st.folder.uidnext,
            b"UIDVALIDITY": st.folder.uidvalidity, b"UNSEEN": st.unseen, b"HIGHESTMODSEQ": st.folder.highestmodseq,
            b"SIZE": st.size,
        }
        body = b" ".join(b"%s %d" % (k, values[k]) for k in wanted)
        return b"* STATUS %s (%s)" % (self.wire_name(name), body)

    auth_STATUS = select_STATUS = (do_STATUS, A.arg_mailbox, A.arg_plist)

    def do_NAMESPACE(self, tag):
        """RFC 2342: the personal namespace and, with the organisation service, the shared one
        holding unit mailboxes (Twisted sent the shared list twice)."""
        shared = b"((" + self.wire_name(SHARED_ROOT) + b' "/"))' if self.sc.org is not None else b"NIL"
        self.untagged(b'NAMESPACE (("" "/")) NIL ' + shared)
        return OK, b"NAMESPACE completed"

    auth_NAMESPACE = select_NAMESPACE = (do_NAMESPACE,)

    # -- APPEND --------------------------------------------------------------------------------
    async def do_APPEND(self, tag, name, flags, when, message):
        try:
            target, folder, _rights = await self.get_folder(name, "head", "append")
        except NotFound:
            return NO, b"[TRYCREATE] No such mailbox"
        limit = await self.quota_limit(target.owner_id)
        source = message.file if isinstance(message, FileLiteral) else bytes(message)
        store = self.sc.store
        blob = await deferToThread(store.messages.put_blob, source)
        uidvalidity, uid = await deferToThread(
            store.messages.append, folder.id, blob, flags=flags, internaldate=when, quota_limit=limit
        )
        if self.selected is not None and self.selected.folder_id == folder.id:
            await self.poll_changes()
        return OK, b"[APPENDUID %d %d] APPEND completed" % (uidvalidity, uid)

    auth_APPEND = select_APPEND = (do_APPEND, A.arg_mailbox, A.opt_flaglist, A.opt_datetime, A.arg_literal)
