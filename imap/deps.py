"""What the IMAP server needs from the services built in mailserver/app.py (docs/architecture.md,
section 1: front ends never import mailserver.*; they type what they are given with a Protocol
of their own).

Every method may block on the database: call it in a thread (``deferToThread``).
"""

from __future__ import annotations

from typing import Protocol

from storage.api import Account
from storage.api import Right, SharedMailbox, Unit


class QuotaProvider(Protocol):
    """mailserver.mailboxes.quota.QuotaService, as far as IMAP uses it."""

    def imap_quota(self, account: Account) -> list[tuple[str, int, int]]:
        """RFC 9208 resources of the account's quota root: (name, usage, limit)."""

    def delivery_limit(self, account: Account) -> int | None:
        """Bytes the account may hold (``append``/``copy`` ``quota_limit``); None = unlimited."""


class OrgProvider(Protocol):
    """storage.api.Organisation, as far as IMAP uses it."""

    def mailboxes_visible_to(self, account_id: int) -> list[SharedMailbox]: ...

    def rights_for(self, account_id: int, mailbox_account_id: int) -> frozenset[Right]: ...

    def resolve_login(self, authcid_account: Account, authzid_address: str | None, *, via: str = "") -> tuple[Account, frozenset[Right]]: ...

    def record_access(self, actor_account_id: int | None, mailbox_account_id: int, action: str, detail: str = "") -> None: ...

    def get_unit(self, code_or_address: str) -> Unit | None: ...


class SessionRegistry(Protocol):
    """mailserver.sessions.SessionGuard, as far as IMAP uses it: logged-in sessions register the
    logins they depend on and are ended (``end_session``) once one no longer holds."""

    def register(self, session, *logins) -> None: ...

    def unregister(self, session) -> None: ...

    def count_for(self, account_id: int, protocol: str) -> int:
        """Sessions of ``protocol`` logged in as ``account_id`` in this process."""


class LoginGuard(Protocol):
    """mailserver.accounts.guard.LoginGuard: ``attempt`` returns an object with ``account``,
    ``refused`` (seconds blocked, nothing checked) and ``reason``."""

    async def attempt(self, protocol: str, host: str, user: str, check, *, thread, sleep): ...


class ConnectionLimiter(Protocol):
    """mailserver.accounts.guard.ConnectionLimits: connections at once per client address."""

    def acquire(self, service: str, host: str) -> bool: ...

    def release(self, service: str, host: str) -> None: ...
