"""ACL (RFC 4314): MYRIGHTS, GETACL, LISTRIGHTS, SETACL, DELETEACL over unit-mailbox delegation,
and the rights LIST RETURN (MYRIGHTS) shows (RFC 8440).

There is no per-folder ACL: the rights of a delegate are those of its delegation on the whole
unit mailbox (storage ``Organisation.delegate``), so an ACL command on any folder of the unit
reads or changes the delegation, and the letters are those of imap/acl.py. SETACL and DELETEACL
are ``unit delegate`` / ``unit undelegate`` done by the head from a mail client: the same service
call, audited the same way (with the head as the one who granted). Only the head (the ``a``
right) may read or change the ACL; anyone else gets ``NO [NOPERM]``, also for a shared name they
cannot see, so the answer does not tell whether such a unit exists. Personal mailboxes are never
shared (R-ACC-1): their ACL is the owner alone and cannot be changed.
"""

from __future__ import annotations

from twisted.internet.threads import deferToThread

from imap.access import Target, is_head_sync, is_shared_name, resolve
from imap.acl import Unexpressible, apply_change, letters, listrights_groups, owner_letters, parse_change
from imap.state import Session
from imap.wire import astring
from storage.api import AccountKind, Right
from storage.errors import NoPerm, NotFound

OK, NO = b"OK", b"NO"


class Refused(Exception):
    """A request our model cannot carry out; the text goes to the client after ``NO [CANNOT]``."""


async def _target(s: Session, name: str) -> Target:
    """The folder an ACL command names. A shared name the user cannot see is ``NoPerm``, the
    same answer as for a unit the user sees but does not head."""
    try:
        return await resolve(s, name)
    except NotFound:
        if is_shared_name(name):
            raise NoPerm(f"{s.actor.address}: no visible unit mailbox for {name!r}") from None
        raise


def _mine_sync(s: Session, target: Target) -> tuple[bool, frozenset[Right]]:
    """(owner or head, rights) of the authenticated user on the target's mailbox."""
    if target.owner_id == s.actor.id:
        return True, frozenset(Right)
    org = s.ctx.org
    if org is None:
        return False, frozenset()
    rights = org.rights_for(s.actor.id, target.owner_id)
    return bool(rights) and is_head_sync(s, target.owner_id), rights


def _admin_sync(s: Session, target: Target, action: str | None):
    """The owner account and its unit (None for a personal mailbox) when the user holds ``a``
    there, the folder existing; else ``NoPerm`` / ``NotFound``. Recorded as ``action`` when not
    one's own (None: the service call records it)."""
    admin, _rights = _mine_sync(s, target)
    if not admin:
        raise NoPerm(f"{s.actor.address} may not administer account {target.owner_id}")
    store = s.ctx.store
    store.folders.get_folder(target.owner_id, target.name)
    owner = store.accounts.get_account_by_id(target.owner_id)
    unit = s.ctx.org.get_unit(owner.address) if s.ctx.org is not None and owner.kind is AccountKind.UNIT else None
    if action is not None and target.owner_id != s.actor.id:
        s.ctx.org.record_access(s.actor.id, target.owner_id, action, target.name)
    return owner, unit


# -- MYRIGHTS / GETACL / LISTRIGHTS --------------------------------------------------------
async def myrights(s: Session, tag: bytes, name):
    target = await resolve(s, name)
    head, rights = await deferToThread(_mine_sync, s, target)
    if not rights:
        raise NotFound(f"{name!r} is not visible to {s.actor.address}")
    await deferToThread(s.ctx.store.folders.get_folder, target.owner_id, target.name)
    s.untagged(b"MYRIGHTS " + s.wire_name(name) + b" " + astring(letters(rights, head=head)))
    return OK, b"MYRIGHTS completed"


def _acl_sync(s: Session, target: Target) -> list[tuple[str, str]]:
    owner, unit = _admin_sync(s, target, "getacl")
    entries = [(owner.address, owner_letters())]
    if unit is not None:
        if unit.head is not None:
            entries.append((unit.head.address, owner_letters()))
        entries.extend((d.delegate.address, letters(d.rights, head=False)) for d in s.ctx.org.delegations(owner.id))
    return entries


async def getacl(s: Session, tag: bytes, name):
    entries = await deferToThread(_acl_sync, s, await _target(s, name))
    s.untagged(b"ACL " + s.wire_name(name) + b"".join(
        b" " + astring(who) + b" " + astring(what) for who, what in entries))
    return OK, b"GETACL completed"


def _listrights_sync(s: Session, target: Target, identifier: str) -> list[str]:
    owner, unit = _admin_sync(s, target, "listrights")
    who = s.ctx.store.accounts.get_account(identifier)
    fixed = {owner.id} | ({unit.head.id} if unit is not None and unit.head is not None else set())
    if who is not None and who.id in fixed:
        return [owner_letters()]  # the owner's and the head's rights are fixed
    if unit is None or who is None or who.kind is not AccountKind.PERSONAL:
        return [""]  # nothing can be granted to it
    return listrights_groups()


async def listrights(s: Session, tag: bytes, name, identifier):
    ident = identifier.decode("utf-8", "replace")
    groups = await deferToThread(_listrights_sync, s, await _target(s, name), ident)
    s.untagged(b"LISTRIGHTS " + s.wire_name(name) + b" " + astring(identifier)
               + b"".join(b" " + astring(g) for g in groups))
    return OK, b"LISTRIGHTS completed"


# -- SETACL / DELETEACL --------------------------------------------------------------------
def _change_sync(s: Session, target: Target, identifier: str, change) -> None:
    owner, unit = _admin_sync(s, target, None)  # Organisation.delegate/undelegate audit it
    if unit is None:
        raise Refused("A personal mailbox is never shared (R-ACC-1)")
    if unit.head is None or unit.head.id != s.actor.id:
        raise NoPerm(f"{s.actor.address} is not the head of {owner.address}")
    org = s.ctx.org
    who = s.ctx.store.accounts.get_account(identifier)
    if who is None:
        raise Refused(f"No account {identifier}")
    if who.id in (owner.id, unit.head.id):
        raise Refused("The rights of the unit mailbox and of its head are fixed (a handover changes the head)")
    current = next((d.rights for d in org.delegations(owner.id) if d.delegate.id == who.id), frozenset())
    wanted = apply_change(current, change)
    if wanted == current:
        return
    if wanted:
        org.delegate(owner.id, who.id, wanted, granted_by=s.actor.id)
    else:
        org.undelegate(owner.id, who.id, revoked_by=s.actor.id)


async def _change(s: Session, name: str, identifier: bytes, change, verb: bytes):
    target = await _target(s, name)
    try:
        await deferToThread(_change_sync, s, target, identifier.decode("utf-8", "replace"), change)
    except Refused as e:
        return NO, b"[CANNOT] " + str(e).encode("utf-8")
    return OK, verb + b" completed; it applies to every folder of the unit mailbox"


async def setacl(s: Session, tag: bytes, name, identifier, rights):
    try:
        change = parse_change(rights.decode("utf-8", "replace"))
    except Unexpressible as e:
        return NO, b"[CANNOT] " + str(e).encode("utf-8") + b" (see LISTRIGHTS)"
    return await _change(s, name, identifier, change, b"SETACL")


async def deleteacl(s: Session, tag: bytes, name, identifier):
    return await _change(s, name, identifier, parse_change(""), b"DELETEACL")


# -- LIST RETURN (MYRIGHTS) ----------------------------------------------------------------
def rights_by_owner_sync(s: Session, owner_ids) -> dict[int, str]:
    """Account id → the user's rights letters there, for LIST's MYRIGHTS (RFC 8440)."""
    out = {}
    for owner_id in set(owner_ids):
        head, rights = _mine_sync(s, Target(owner_id, ""))
        out[owner_id] = letters(rights, head=head)
    return out
