"""The inbound pipeline: ordered lists of small named checks, one list per stage of a transaction.

A check is ``async def check(ctx) -> Verdict``; the first verdict that carries a reply refuses
(that stage only: one recipient at RCPT, the message at DATA). Checks call the store through
``ctx.call`` (a thread hand-off, never on the loop). Verdicts may also carry trace headers to
prepend (``Authentication-Results``, R-SEC-2) and, at RCPT, the delivery target the recipient
resolves to. The registry is an explicit dict (no import side effects) so the configuration can name
and order the checks (smtp/pipeline/checks/__init__.py); quota (R-QUOTA-1) is ``recipient_quota``
at RCPT and ``attachment_quota`` after DATA.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol, Sequence

from config.settings import Limits
from storage.api import Account, Store

log = logging.getLogger("smtp.pipeline")


class Groups(Protocol):
    """Group mailboxes (R-BOX-4), given to the handler by the composition root (storage.api.Organisation's
    ``Organisation`` fits; smtp/ does not import storage internals). Blocking: call via ``ctx.call``."""

    def expand_accounts(self, group: str | int) -> list[Account]: ...
    def may_send_to_group(self, group: str | int, sender_address: str) -> bool: ...


class Org(Protocol):
    """Delegation (R-BOX-2, R-ACC-1) for submission; ``storage.api.Organisation`` fits.
    Blocking: call via ``ctx.call``."""

    def may_send_as(self, account_id: int, address: str) -> bool: ...
    def record_access(self, actor_account_id: int | None, mailbox_account_id: int, action: str, detail: str = "") -> None: ...
    def resolve_login(self, authcid_account: Account, authzid_address: str | None, *, via: str = "") -> tuple[Account, Any]: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    reply: str | None = None  # None: go on with the next check
    reason: str = ""  # for the log, never for the client
    headers: bytes = b""  # trace headers to prepend to the stored message (DATA stage)


PASS = Verdict()


def refuse(reply: str, reason: str) -> Verdict:
    return Verdict(reply=reply, reason=reason)


@dataclass(frozen=True, slots=True)
class Peer:
    """What the checks know of the client."""

    ip: str
    helo: str
    tls: bool
    authenticated: bool  # AUTH succeeded (submission)
    account_id: int | None = None  # the account the session acts as (a unit, after SASL authzid)
    actor_id: int | None = None  # the account whose password was checked (SASL authcid)
    actor_password_changed_at: _dt.datetime | None = None  # as it was then (checks.login_current)
    outbound: bool = False  # an outbound queue takes remote recipients


@dataclass(frozen=True, slots=True)
class Login:
    """``session.auth_data`` after AUTH: who proved a password, and whom the session acts as
    (the same account, or a unit mailbox through the SASL authorization identity)."""

    account: Account
    actor: Account


@dataclass(slots=True)
class Context:
    store: Store
    limits: Limits
    peer: Peer
    executor: Executor | None = None  # None: the loop's default executor

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking store method in a worker thread (storage API contract)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)


@dataclass(slots=True)
class MailContext(Context):
    sender: str = ""
    declared_size: int | None = None  # MAIL FROM ... SIZE=
    max_size: int | None = None  # the SIZE advertised (None: limits.max_message_size)
    org: Org | None = None
    send_as: int | None = None  # filled by sender_authorised: the unit account sent as


@dataclass(slots=True)
class RcptContext(Context):
    sender: str = ""
    address: str = ""
    domain: str = ""
    accepted: int = 0  # recipients accepted so far in this transaction
    declared_size: int | None = None
    configured_domains: frozenset[str] = frozenset()  # settings.domains: local without a look-up
    groups: Groups | None = None  # None: a group address is delivered like any mailbox
    quota: Any = None  # smtp.quota.QuotaPolicy, None: no quota checks
    utf8: bool = False  # MAIL FROM ... SMTPUTF8: replies may carry UTF-8
    local: bool | None = None  # filled by the relay check
    account: Account | None = None  # filled by recipient_exists
    deliver_to: list[Account] = field(default_factory=list)  # [account], or a group's members
    roles: Any = None  # config.filters.RoleAddresses: postmaster@/abuse@ targets


@dataclass(slots=True)
class DataContext(Context):
    sender: str = ""
    recipients: Sequence[str] = ()
    accounts: Sequence[Account] = ()
    remote: Sequence[str] = ()  # recipients for the outbound queue (submission)
    size: int = 0
    quota: Any = None  # smtp.quota.QuotaPolicy
    utf8: bool = False
    sender_account: Account | None = None  # submission: the account the session acts as
    org: Org | None = None
    helo: str = ""
    authserv_id: str = ""  # our hostname, for Authentication-Results
    resolver: Any = None  # smtp.outbound.dns.Resolver for SPF/DKIM (None: not checked)
    data_state: Any = None  # smtp.data.DataState
    spool: Any = None  # readable, seekable file of the message (None when refused early)
    head: bytes | None = None  # its header section when known without reading the spool
    parsed: dict | None = None  # store.messages.parse_message of the spool, when a check parsed it (for put_blob)
    filters: Any = None  # smtp.filters.Filters (MX): spamd, clamd, milters, DMARC; None: none
    classified: Any = None  # smtp.classified.Guard (submission, R-SEC-3); None: not checked
    extra: dict[str, Any] = field(default_factory=dict)


Check = Callable[[Any], Awaitable[Verdict]]


async def run(checks: Sequence[tuple[str, Check]], ctx: Context) -> tuple[str | None, Verdict]:
    """Run checks in order; returns (name of the refusing check or None, verdict). Headers of
    passing verdicts are concatenated into the returned verdict."""
    headers = b""
    for name, check in checks:
        verdict = await check(ctx)
        if verdict.reply is not None:
            return name, verdict
        headers += verdict.headers
    return None, Verdict(headers=headers)


def build(stage: str, names: Sequence[str] | None = None) -> list[tuple[str, Check]]:
    """The named checks of ``stage`` ("MAIL", "RCPT", "DATA") in order; defaults when None."""
    from smtp.pipeline.checks import DEFAULTS, REGISTRY

    chosen = DEFAULTS[stage] if names is None else names
    unknown = [n for n in chosen if n not in REGISTRY[stage]]
    if unknown:
        raise ValueError(f"unknown {stage} checks: {', '.join(unknown)}")
    return [(n, REGISTRY[stage][n]) for n in chosen]
