"""Authenticated-state folder commands: LIST, LSUB, CREATE, DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE, STATUS, NAMESPACE, APPEND. Folder names are NFC in the store, modified UTF-7 on the
wire; the hierarchy delimiter is "/". Store errors surface through imap/errors.py (Twisted
ignored failures from create() and answered OK).
"""

from __future__ import annotations

import re

from twisted.internet.threads import deferToThread

from imap import mutf7
from imap.args import ArgParsers as A
from imap.wire import Atom, FileLiteral, ParseError, astring
from storage.errors import NotFound

OK, NO = b"OK", b"NO"
DELIM = "/"
_STATUS_ITEMS = (b"MESSAGES", b"RECENT", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN", b"HIGHESTMODSEQ")


def wire_name(name: str) -> bytes:
    return astring(mutf7.encode(name))


def pattern_regex(pattern: str) -> re.Pattern:
    out = []
    for ch in pattern:
        out.append(".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch))
    return re.compile("^" + "".join(out) + "$", re.S)


def list_entries(names: dict[str, list[str]], pattern: str) -> list[tuple[str, list[str]]]:
    """``names``: folder → its attributes. Adds missing parents as \\NonExistent, and the
    CHILDREN attributes (RFC 3348); returns matching (name, attributes) sorted."""
    every = dict(names)
    for name in names:
        parts = name.split(DELIM)
        for i in range(1, len(parts)):
            every.setdefault(DELIM.join(parts[:i]), ["\\Noselect"])
    parents = {n.rsplit(DELIM, 1)[0] for n in every if DELIM in n}
    rx = pattern_regex(pattern)
    out = []
    for name in sorted(every, key=lambda n: (n != "INBOX", n)):
        if not rx.match(name):
            continue
        attrs = list(every[name])
        attrs.append("\\HasChildren" if name in parents else "\\HasNoChildren")
        out.append((name, attrs))
    return out


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

    # -- LIST / LSUB ---------------------------------------------------------------------------
    async def _list(self, tag, ref: str, pattern: str, lsub: bool):
        verb = b"LSUB" if lsub else b"LIST"
        if not pattern:
            self.untagged(verb + b' (\\Noselect) "/" ""')
            return OK, verb + b" completed"
        folders = await deferToThread(self.sc.store.list_folders, self.account.id)
        names = {}
        for f in folders:
            if lsub and not f.subscribed:
                continue
            names[f.name] = [f.special_use] if f.special_use and not lsub else []
        full = pattern if not ref or pattern.startswith(DELIM) else ref + pattern
        from imap.args import normalize_mailbox

        lines = []
        for name, attrs in list_entries(names, normalize_mailbox(full)):
            if lsub:
                attrs = [a for a in attrs if a == "\\Noselect"]
            lines.append(b"* %s (%s) \"/\" %s" % (verb, " ".join(attrs).encode(), wire_name(name)))
        self.write_lines(lines)
        return OK, verb + b" completed"

    def do_LIST(self, tag, ref, pattern):
        return self._list(tag, ref, pattern, False)

    def do_LSUB(self, tag, ref, pattern):
        return self._list(tag, ref, pattern, True)

    auth_LIST = select_LIST = (do_LIST, A.arg_mailbox, A.arg_pattern)
    auth_LSUB = select_LSUB = (do_LSUB, A.arg_mailbox, A.arg_pattern)

    # -- CREATE / DELETE / RENAME / (UN)SUBSCRIBE ----------------------------------------------
    async def do_CREATE(self, tag, name):
        name = check_new_name(name)
        if name.upper() == "INBOX":
            return NO, b"[ALREADYEXISTS] INBOX always exists"
        await deferToThread(self.sc.store.create_folder, self.account.id, name)
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

    auth_CREATE = select_CREATE = (do_CREATE, A.arg_mailbox)
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
        values = {
            b"MESSAGES": st.messages, b"RECENT": st.recent, b"UIDNEXT": st.folder.uidnext,
            b"UIDVALIDITY": st.folder.uidvalidity, b"UNSEEN": st.unseen, b"HIGHESTMODSEQ": st.folder.highestmodseq,
        }
        body = b" ".join(b"%s %d" % (k, values[k]) for k in wanted)
        self.untagged(b"STATUS %s (%s)" % (wire_name(st.folder.name), body))
        return OK, b"STATUS completed"

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
