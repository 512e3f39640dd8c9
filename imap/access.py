"""Which account a folder name belongs to, and whether this session may do what it asks there.

Names in the personal namespace (``""``) are the session's own folders. Names under the shared
namespace ``Đơn vị/`` (storage.api.SHARED_PREFIX, RFC 2342) are folders of the unit mailboxes the
user heads or is delegated: ``Đơn vị/Văn phòng/INBOX`` is INBOX of the unit whose shared path is
``Đơn vị/Văn phòng``. Rights are never cached: every command on a folder that is not the
authenticated user's own asks ``org.rights_for`` again and records the access in the audit log
(``org.record_access``), so a withdrawn delegation or a handover takes effect at the next command.

Two identities (imap/state.py): ``s.account`` is who the session acts as (a unit mailbox after
SASL PLAIN with an authorization identity), ``s.actor`` who proved a password. Rights are the actor's.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.threads import deferToThread

from imap.args import normalize_mailbox
from imap.state import Session
from storage.errors import NoPerm, NotFound
from storage.api import ALL_RIGHTS, SHARED_PREFIX, Right

SHARED_ROOT = SHARED_PREFIX + "/"
#: what each kind of access needs (RFC 4314 in spirit: r, w, t/e)
NEEDS = {
    "read": frozenset({Right.READ}),
    "write-flags": frozenset({Right.READ, Right.WRITE_FLAGS}),
    "delete": frozenset({Right.READ, Right.DELETE}),
    "flags-and-delete": frozenset({Right.READ, Right.WRITE_FLAGS, Right.DELETE}),
    "head": frozenset(),  # head of the unit only (APPEND/COPY into, CREATE/RENAME/DELETE)
}


@dataclass(frozen=True, slots=True)
class Target:
    owner_id: int  # account whose folder this is
    name: str  # folder name in that account (NFC, INBOX normalised)
    shared_path: str | None = None  # "Đơn vị/Văn phòng" when reached through the shared namespace

    @property
    def quota_root(self) -> str:
        return self.shared_path or ""

    def client_name(self) -> str:
        return f"{self.shared_path}/{self.name}" if self.shared_path else self.name


def is_shared_name(name: str) -> bool:
    return name == SHARED_PREFIX or name.startswith(SHARED_ROOT)


def split_shared(name: str, visible) -> tuple[object, str] | None:
    """(SharedMailbox, folder name inside it) for a shared-namespace name, longest path first."""
    for sm in sorted(visible, key=lambda s: -len(s.path)):
        if name.startswith(sm.path + "/") and len(name) > len(sm.path) + 1:
            return sm, normalize_mailbox(name[len(sm.path) + 1 :])
    return None


async def visible_shared(s: Session) -> list:
    if s.ctx.org is None:
        return []
    return await deferToThread(s.ctx.org.mailboxes_visible_to, s.account.id)


async def resolve(s: Session, name: str) -> Target:
    """The folder a client name stands for. ``NotFound`` for shared names nobody gave us."""
    if s.ctx.org is None or not is_shared_name(name):
        return Target(s.account.id, name)
    found = split_shared(name, await visible_shared(s))
    if found is None:
        raise NotFound(f"no shared mailbox for {name!r}")
    sm, inner = found
    return Target(sm.account.id, inner, sm.path)


async def quota_root_owner(s: Session, root: str) -> int | None:
    if root == "":
        return s.account.id
    for sm in await visible_shared(s):
        if sm.path == root:
            return sm.account.id
    return None


async def authorize(s: Session, target: Target, need: str, action: str) -> frozenset[Right]:
    """The actor's rights on ``target`` if they cover ``need`` (a NEEDS key), else ``NoPerm``.
    Access to a mailbox other than the actor's own is recorded."""
    if target.owner_id == s.actor.id:
        return ALL_RIGHTS
    return await deferToThread(_authorize_sync, s, target, need, action)


async def get_folder(s: Session, name: str, need: str = "read", action: str = ""):
    """(target, folder, rights) for a client folder name, the access checked and recorded."""
    target = await resolve(s, name)
    rights = await authorize(s, target, need, action or need)
    folder = await deferToThread(s.ctx.store.folders.get_folder, target.owner_id, target.name)
    return target, folder, rights


async def may(s: Session, target: Target, need: str, action: str) -> bool:
    try:
        await authorize(s, target, need, action)
    except NoPerm:
        return False
    return True


def _authorize_sync(s: Session, target: Target, need: str, action: str) -> frozenset[Right]:
    org = s.ctx.org
    if org is None:
        raise NoPerm("no organisation service")
    rights = org.rights_for(s.actor.id, target.owner_id)
    if not rights or not NEEDS[need] <= rights:
        raise NoPerm(f"{s.actor.address} lacks {need} on account {target.owner_id}")
    if need == "head" and not is_head_sync(s, target.owner_id):
        raise NoPerm(f"{s.actor.address} is not the head of account {target.owner_id}")
    org.record_access(s.actor.id, target.owner_id, action, target.name)
    return rights


def is_head_sync(s: Session, owner_id: int) -> bool:
    owner = s.ctx.store.accounts.get_account_by_id(owner_id)
    unit = s.ctx.org.get_unit(owner.address) if owner is not None else None
    return unit is not None and unit.head is not None and unit.head.id == s.actor.id
