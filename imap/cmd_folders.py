"""Authenticated-state folder commands: CREATE (with RFC 6154 USE), DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE, STATUS, NAMESPACE, APPEND (LIST/LSUB are in imap/cmd_list.py). Folder names are NFC in the store, modified UTF-7 on the
wire; the hierarchy delimiter is "/". Store errors surface through imap/errors.py (Twisted
ignored failures from create() and answered OK).
"""

from __future__ import annotations

from twisted.internet.threads import deferToThread

from imap.args import ArgParsers as A
from imap.cmd_list import wire_name
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
    def quota_limit(self) -> int | None:
        """Bytes this account may hold: its own quota, else the configured mailbox quota."""
        own = getattr(self.account, "quota_bytes", None)
        return own if own is not None else self.sc.settings.quota.mailbox

    async def get_folder(self, name: str):
        return await deferToThread(self.sc.store.get_folder, self.account.id, name)

    # -- CREATE / DELETE / RENAME / (UN)SUBSCRIBE ----------------------------------------------
    async def do_CREATE(self, tag, name, params):
        name = check_new_name(name)
        if name.upper() == "INBOX":
            return NO, b"[ALREADYEXISTS] INBOX always exists"
        use = None
        if params is not None:
            if len(params) != 2 or not isinstance(params[0], Atom) or params[0].upper() != b"USE" or not isinstance(params[1], list):
                raise ParseError("Expected (USE (attributes))")
            uses = [CREATABLE_USES.get(bytes(u).decode("ascii", "replace").lower()) for u in params[1]]
            if len(uses) != 1 or uses[0] is None:
                return NO, b"[USEATTR] Only one of \\Archive \\Drafts \\Junk \\Sent \\Trash"
            use = uses[0]
        await deferToThread(self.sc.store.create_folder, self.account.id, name, special_use=use)
        return OK, b"CREATE completed"

    async def do_DELETE(self, tag, name):
        if self.selected is not None and self.selected.folder.name == name:
            self.deselect()
            self.state = "auth"
        await deferToThread(self.sc.store.delete_folder, self.account.id, name)
        return OK, b"DELETE completed"

    async def do_RENAME(self, tag, old, new):
        new = check_new_name(new)
        await deferToThread(self.sc.store.rename_folder, self.account.id, old, new)
        return OK, b"RENAME completed"

    async def do_SUBSCRIBE(self, tag, name):
        await deferToThread(self.sc.store.set_subscribed, self.account.id, name, True)
        return OK, b"SUBSCRIBE completed"

    async def do_UNSUBSCRIBE(self, tag, name):
        await deferToThread(self.sc.store.set_subscribed, self.account.id, name, False)
        return OK, b"UNSUBSCRIBE completed"

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
        folder = await self.get_folder(name)
        st = await deferToThread(self.sc.store.folder_status, folder.id)
        self.write_lines([self.status_line(st, wanted)])
        return OK, b"STATUS completed"

    def status_line(self, st, wanted) -> bytes:
        values = {
            b"MESSAGES": st.messages, b"RECENT": st.recent, b"UIDNEXT": st.folder.uidnext,
            b"UIDVALIDITY": st.folder.uidvalidity, b"UNSEEN": st.unseen, b"HIGHESTMODSEQ": st.folder.highestmodseq,
            b"SIZE": st.size,
        }
        body = b" ".join(b"%s %d" % (k, values[k]) for k in wanted)
        return b"* STATUS %s (%s)" % (wire_name(st.folder.name), body)

    auth_STATUS = select_STATUS = (do_STATUS, A.arg_mailbox, A.arg_plist)

    def do_NAMESPACE(self, tag):
        """RFC 2342: one personal namespace; no shared ones yet (Twisted sent shared twice)."""
        self.untagged(b'NAMESPACE (("" "/")) NIL NIL')
        return OK, b"NAMESPACE completed"

    auth_NAMESPACE = select_NAMESPACE = (do_NAMESPACE,)

    # -- APPEND --------------------------------------------------------------------------------
    async def do_APPEND(self, tag, name, flags, when, message):
        try:
            folder = await self.get_folder(name)
        except NotFound:
            return NO, b"[TRYCREATE] No such mailbox"
        source = message.file if isinstance(message, FileLiteral) else bytes(message)
        store = self.sc.store
        blob = await deferToThread(store.put_blob, source)
        uidvalidity, uid = await deferToThread(
            store.append, folder.id, blob, flags=flags, internaldate=when, quota_limit=self.quota_limit()
        )
        if self.selected is not None and self.selected.folder_id == folder.id:
            await self.poll_changes()
        return OK, b"[APPENDUID %d %d] APPEND completed" % (uidvalidity, uid)

    auth_APPEND = select_APPEND = (do_APPEND, A.arg_mailbox, A.opt_flaglist, A.opt_datetime, A.arg_literal)
