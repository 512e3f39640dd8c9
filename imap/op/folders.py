"""Authenticated-state folder commands: CREATE (with RFC 6154 USE), DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE, STATUS, NAMESPACE (LIST/LSUB in imap/op/listing.py, APPEND in imap/op/append.py). Folder names are
NFC in the store, modified UTF-7 on the wire; the hierarchy delimiter is "/". Store errors surface through imap/errors.py (Twisted
ignored failures from create() and answered OK).
"""

from __future__ import annotations

from dataclasses import replace

from twisted.internet.threads import deferToThread

from imap.access import SHARED_ROOT, authorize, get_folder, resolve
from imap.state import AUTH, Session
from imap.wire import Atom, ParseError
from storage.api import FolderStatus
from storage.search import HasFlag

OK, NO = b"OK", b"NO"
DELIM = "/"
_STATUS_ITEMS = (b"MESSAGES", b"RECENT", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN", b"HIGHESTMODSEQ", b"SIZE", b"DELETED",
                 b"MAILBOXID")
#: Special uses a folder can be created with (\All and \Flagged would be virtual folders).
CREATABLE_USES = {"\\archive": "\\Archive", "\\drafts": "\\Drafts", "\\junk": "\\Junk", "\\sent": "\\Sent", "\\trash": "\\Trash"}


def check_new_name(name: str) -> str:
    name = name.rstrip(DELIM)
    if not name or name.startswith(DELIM) or DELIM * 2 in name or any(c in name for c in "%*") or any(ord(c) < 0x20 for c in name):
        raise ParseError("Invalid mailbox name")
    return name


# -- CREATE / DELETE / RENAME / (UN)SUBSCRIBE ----------------------------------------------
async def create(s: Session, tag: bytes, name, params):
    name = check_new_name(name)
    target = await resolve(s, name)
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
    await authorize(s, target, "head", "create")
    folder = await deferToThread(s.ctx.store.folders.create_folder, target.owner_id, target.name, special_use=use)
    return OK, b"[MAILBOXID (%s)] CREATE completed" % folder.mailboxid.encode("ascii")


async def delete(s: Session, tag: bytes, name):
    target = await resolve(s, name)
    await authorize(s, target, "head", "delete-folder")
    sv = s.selected
    if sv is not None and sv.target.owner_id == target.owner_id and sv.folder.name == target.name:
        s.deselect()
        s.state = AUTH
    await deferToThread(s.ctx.store.folders.delete_folder, target.owner_id, target.name)
    return OK, b"DELETE completed"


async def rename(s: Session, tag: bytes, old, new):
    new = check_new_name(new)
    src, dst = await resolve(s, old), await resolve(s, new)
    if src.owner_id != dst.owner_id:
        return NO, b"[CANNOT] Folders cannot be renamed into another mailbox"
    await authorize(s, src, "head", "rename-folder")
    await deferToThread(s.ctx.store.folders.rename_folder, src.owner_id, src.name, dst.name)
    return OK, b"RENAME completed"


async def _subscribe(s: Session, name: str, on: bool):
    target = await resolve(s, name)
    if target.owner_id != s.account.id:
        return NO, b"[CANNOT] Shared folders are always listed; subscriptions are personal"
    await deferToThread(s.ctx.store.folders.set_subscribed, s.account.id, name, on)
    return OK, (b"SUBSCRIBE" if on else b"UNSUBSCRIBE") + b" completed"


def subscribe(s: Session, tag: bytes, name):
    return _subscribe(s, name, True)


def unsubscribe(s: Session, tag: bytes, name):
    return _subscribe(s, name, False)


# -- STATUS / NAMESPACE --------------------------------------------------------------------
async def status(s: Session, tag: bytes, name, items):
    if not items:
        raise ParseError("STATUS needs at least one item")  # RFC 3501 §9: status-att *(SP status-att)
    wanted = []
    for it in items:
        key = bytes(it).upper() if isinstance(it, Atom) else b""
        if key not in _STATUS_ITEMS or (key == b"RECENT" and s.rev2):
            raise ParseError("Unknown STATUS item")
        wanted.append(key)
        if key == b"HIGHESTMODSEQ":
            s.enable_condstore()
    _target, folder, _rights = await get_folder(s, name, "read", "status")
    if folder.name.upper() == "INBOX":  # R-OPS-1: a mailbox check
        s.ctx.store.usage.count(folder.account_id, "checks")
    st, deleted = await deferToThread(folder_status, s, folder.id, wanted)
    sv = s.selected
    if sv is not None and sv.folder_id == folder.id and not sv.readonly:
        # The messages this session took as \Recent at SELECT are no longer at or above the
        # folder's recent floor; STATUS agrees with what this session's FETCH FLAGS shows.
        st = replace(st, recent=len(sv.recent))
    s.write_lines([status_line(s, st, wanted, name, deleted)])
    return OK, b"STATUS completed"


def folder_status(s: Session, folder_id: int, wanted) -> tuple[FolderStatus, int]:
    """In a thread: the folder's counts and, only when asked for, how many messages are
    \\Deleted (STATUS DELETED, RFC 9051 §6.3.11; an indexed flag search)."""
    st = s.ctx.store.folders.folder_status(folder_id)
    deleted = len(s.ctx.store.search.search(folder_id, HasFlag("\\Deleted"))) if b"DELETED" in wanted else 0
    return st, deleted


def status_line(s: Session, st, wanted, name: str, deleted: int = 0) -> bytes:
    values = {
        b"DELETED": deleted,
        b"MESSAGES": st.messages, b"RECENT": st.recent, b"UIDNEXT": st.folder.uidnext,
        b"UIDVALIDITY": st.folder.uidvalidity, b"UNSEEN": st.unseen, b"HIGHESTMODSEQ": st.folder.highestmodseq,
        b"SIZE": st.size, b"MAILBOXID": b"(%s)" % st.folder.mailboxid.encode("ascii"),  # RFC 8474 §4
    }
    body = b" ".join(b"%s %s" % (k, values[k]) if k == b"MAILBOXID" else b"%s %d" % (k, values[k]) for k in wanted)
    return b"* STATUS %s (%s)" % (s.wire_name(name), body)


def namespace(s: Session, tag: bytes):
    """RFC 2342: the personal namespace and, with the organisation service, the shared one
    holding unit mailboxes (Twisted sent the shared list twice)."""
    shared = b"((" + s.wire_name(SHARED_ROOT) + b' "/"))' if s.ctx.org is not None else b"NIL"
    s.untagged(b'NAMESPACE (("" "/")) NIL ' + shared)
    return OK, b"NAMESPACE completed"
