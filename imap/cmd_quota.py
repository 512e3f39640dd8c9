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

from imap.args import ArgParsers as A
from storage.errors import NotFound

OK, NO = b"OK", b"NO"
#: The quota resources this server can report; MESSAGE only where a message limit exists.
RESOURCES = (b"STORAGE", b"MESSAGE")


class QuotaCommands:
    def quota_capabilities(self) -> list[bytes]:
        caps = [b"QUOTA", b"QUOTA=RES-STORAGE"]
        if b"MESSAGE" in self.quota_resources:
            caps.append(b"QUOTA=RES-MESSAGE")
        return caps

    def _resources_sync(self, account_id: int) -> list[tuple[str, int, int]]:
        account = self.sc.store.accounts.get_account_by_id(account_id)
        if account is None:
            raise NotFound(f"account {account_id}")
        return self.sc.quota.imap_quota(account)

    def limit_sync(self, account_id: int) -> int | None:
        """The ``quota_limit`` for storing into ``account_id``'s folders (call in a thread)."""
        account = self.sc.store.accounts.get_account_by_id(account_id)
        if account is None:
            raise NotFound(f"account {account_id}")
        return self.sc.quota.delivery_limit(account)

    def quota_line(self, root: str, resources) -> bytes:
        """Quota roots name mailboxes here, so they go on the wire as folder names do."""
        body = b" ".join(b"%s %d %d" % (name.encode("ascii"), usage, limit) for name, usage, limit in resources)
        return b"* QUOTA " + self.wire_name(root) + b" (" + body + b")"

    async def do_GETQUOTAROOT(self, tag, name):
        target = await self.resolve(name)
        await self.authorize(target, "read", "getquotaroot")
        await deferToThread(self.sc.store.folders.get_folder, target.owner_id, target.name)
        resources = await deferToThread(self._resources_sync, target.owner_id)
        line = b"* QUOTAROOT " + self.wire_name(name)
        if not resources:
            self.write_lines([line])
        else:
            self.write_lines([line + b" " + self.wire_name(target.quota_root), self.quota_line(target.quota_root, resources)])
        return OK, b"GETQUOTAROOT completed"

    async def do_GETQUOTA(self, tag, root):
        owner_id = await self.quota_root_owner(root)
        resources = await deferToThread(self._resources_sync, owner_id) if owner_id is not None else []
        if not resources:
            return NO, b"[NONEXISTENT] No such quota root"
        self.write_lines([self.quota_line(root, resources)])
        return OK, b"GETQUOTA completed"

    def do_SETQUOTA(self, tag, root, limits):
        return NO, b"[NOPERM] Quotas are set by the operator"

    auth_GETQUOTAROOT = select_GETQUOTAROOT = (do_GETQUOTAROOT, A.arg_mailbox)
    auth_GETQUOTA = select_GETQUOTA = (do_GETQUOTA, A.arg_mailbox)
    auth_SETQUOTA = select_SETQUOTA = (do_SETQUOTA, A.arg_mailbox, A.arg_plist)
