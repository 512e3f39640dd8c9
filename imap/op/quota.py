"""QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA, SETQUOTA.

Each account has one quota root: ``""`` for the session's own mailbox, and for a unit mailbox
seen in the shared namespace its shared path (``Đơn vị/Văn phòng``), since its folders are
charged to the unit. Figures come from the injected quota service (``imap_quota``): STORAGE in
units of 1024 octets and MESSAGE when a message limit exists; an unlimited account has no quota
root. Limits are set by the operator (``mailserver quota set``), never by a client: SETQUOTA is
refused with [NOPERM].
"""

from __future__ import annotations

from twisted.internet.threads import deferToThread

from imap.access import authorize, quota_root_owner, resolve
from imap.state import Session
from storage.errors import NotFound

OK, NO = b"OK", b"NO"
#: The quota resources this server can report; MESSAGE only where a message limit exists.
RESOURCES = (b"STORAGE", b"MESSAGE")


def quota_capabilities(s: Session) -> list[bytes]:
    caps = [b"QUOTA", b"QUOTA=RES-STORAGE"]
    if b"MESSAGE" in s.quota_resources:
        caps.append(b"QUOTA=RES-MESSAGE")
    return caps


def _resources_sync(s: Session, account_id: int) -> list[tuple[str, int, int]]:
    account = s.ctx.store.accounts.get_account_by_id(account_id)
    if account is None:
        raise NotFound(f"account {account_id}")
    return s.ctx.quota.imap_quota(account)


def limit_sync(s: Session, account_id: int) -> int | None:
    """The ``quota_limit`` for storing into ``account_id``'s folders (call in a thread)."""
    account = s.ctx.store.accounts.get_account_by_id(account_id)
    if account is None:
        raise NotFound(f"account {account_id}")
    return s.ctx.quota.delivery_limit(account)


async def quota_limit(s: Session, owner_id: int) -> int | None:
    return await deferToThread(limit_sync, s, owner_id)


def quota_line(s: Session, root: str, resources) -> bytes:
    """Quota roots name mailboxes here, so they go on the wire as folder names do."""
    body = b" ".join(b"%s %d %d" % (name.encode("ascii"), usage, limit) for name, usage, limit in resources)
    return b"* QUOTA " + s.wire_name(root) + b" (" + body + b")"


async def getquotaroot(s: Session, tag: bytes, name):
    target = await resolve(s, name)
    await authorize(s, target, "read", "getquotaroot")
    await deferToThread(s.ctx.store.folders.get_folder, target.owner_id, target.name)
    resources = await deferToThread(_resources_sync, s, target.owner_id)
    line = b"* QUOTAROOT " + s.wire_name(name)
    if not resources:
        s.write_lines([line])
    else:
        s.write_lines([line + b" " + s.wire_name(target.quota_root), quota_line(s, target.quota_root, resources)])
    return OK, b"GETQUOTAROOT completed"


async def getquota(s: Session, tag: bytes, root):
    owner_id = await quota_root_owner(s, root)
    resources = await deferToThread(_resources_sync, s, owner_id) if owner_id is not None else []
    if not resources:
        return NO, b"[NONEXISTENT] No such quota root"
    s.write_lines([quota_line(s, root, resources)])
    return OK, b"GETQUOTA completed"


def setquota(s: Session, tag: bytes, root, limits):
    return NO, b"[NOPERM] Quotas are set by the operator"
