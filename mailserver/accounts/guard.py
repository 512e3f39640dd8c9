"""The login guard (R-SEC-1): one mechanism for IMAP, POP3, submission and the portal.

Every login goes through ``LoginGuard.attempt``: the tallies of the client address and of the
account name are read (``store.guard``, a table, so every process of an installation shares
them); a blocked address is refused without a password check; otherwise the address's penalty
is waited out (a timer, never a sleeping thread), the front end's own check runs, a failure is
counted under both keys and its answer waits for the account's penalty. The decisions are the
pure functions of mailserver/policy/guard.py. Clients in ``guard.trusted`` skip all of it.

Each login, success or failure, is one line on the ``mailserver.login`` logger, in the format
docs/operations.md documents and contrib/fail2ban/ reads::

    login protocol=imap client=203.0.113.7 result=fail reason=credentials user="an@example.gov.vn"

The front end supplies ``thread(fn, *args)`` and ``sleep(seconds)`` returning awaitables of its
own framework (asyncio for SMTP, Twisted Deferreds for IMAP, POP3 and the portal).
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from config.settings import Guard as GuardSettings
from mailserver.policy.guard import (
    GuardRules, Tally, account_key, blocked_for, client_key, current, delay_before, delay_failure, is_trusted,
)
from mailserver.policy.loginlog import log_limit, log_login
from storage.api import DAY_FACTS, LOGIN_STATES, AccountState, Store

log = logging.getLogger(__name__)

#: seconds between two prunings of the tallies (expired ones, then the oldest beyond the bound)
PRUNE_EVERY = 60.0

Thread = Callable[..., Awaitable[Any]]
Sleep = Callable[[float], Awaitable[Any]]


def rules_of(settings: GuardSettings) -> GuardRules:
    return GuardRules(delay_first=settings.delay_first, delay_max=settings.delay_max, block_after=settings.block_after,
                      block_seconds=settings.block_seconds, forget_after=settings.forget_after)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What became of a login: ``account`` (the check's result) on success; ``refused`` > 0:
    the address is blocked for that many seconds and nothing was checked."""

    account: Any = None
    refused: float = 0.0
    reason: str = ""


class LoginGuard:
    def __init__(self, store: Store, settings: GuardSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.rules = rules_of(settings)
        self.clock = clock
        self._pruned = 0.0
        self._lock = threading.Lock()

    def trusted(self, host: str) -> bool:
        return is_trusted(host, self.settings.trusted)

    async def attempt(self, protocol: str, host: str, user: str, check: Callable[[], Awaitable[tuple[Any, str]]],
                      *, thread: Thread, sleep: Sleep) -> Attempt:
        """Guard one login from ``host`` as ``user`` (as typed). ``check()`` verifies it and
        returns (the account or None, one-word reason of a failure)."""
        if self.trusted(host):
            account, reason = await check()
            log_login(protocol, host, user, "ok" if account is not None else "fail", "trusted" if account is not None else reason)
            self._count(protocol, account)
            return Attempt(account, reason=reason)
        ip, name = "ip:" + client_key(host), "user:" + account_key(user)
        pair = f"pair:{client_key(host)}|{account_key(user)}"
        address, typos = await thread(self._tallies, ip, pair)
        now = self.clock()
        block = blocked_for(address, now, self.rules)
        if block > 0:
            log_login(protocol, host, user, "refused", "blocked")
            return Attempt(refused=block)
        waited = delay_before(address, now, self.rules)
        if waited > 0:
            await sleep(waited)
        account, reason = await check()
        if account is not None:
            log_login(protocol, host, user, "ok", "password")
            self._count(protocol, account)
            if current(typos, now, self.rules):
                await thread(self._forgive, ip, pair, typos.failures)
            return Attempt(account)
        log_login(protocol, host, user, "fail", reason)
        counts = await thread(self._failed, ip, name, pair)
        lock_after = self.settings.lock_after
        if lock_after is not None and counts.get(name, 0) >= lock_after:
            try:
                await thread(self._lock_account, protocol, host, user, counts[name])
            except Exception:  # noqa: BLE001 (the login's answer must not fail; the next failure tries again)
                log.exception("could not lock %r after %d failed logins", user, counts[name])
        extra = delay_failure(counts.get(name, 0), waited, self.rules)
        if extra > 0:
            await sleep(extra)
        return Attempt(reason=reason)

    def _count(self, protocol: str, found: Any) -> None:
        """R-OPS-1/2: a login by protocol; a POP3 session is also a mailbox check. ``found`` is
        what the protocol's check returned (IMAP: (account, authorization))."""
        account = found[0] if isinstance(found, tuple) else found
        account_id = getattr(account, "id", None)
        if account_id is None or f"login_{protocol}" not in DAY_FACTS:
            return
        self.store.usage.count(account_id, f"login_{protocol}")
        if protocol == "pop3":
            self.store.usage.count(account_id, "checks")

    # -- in a worker thread -------------------------------------------------------------------
    def _tallies(self, *keys: str) -> tuple[Tally | None, ...]:
        found = self.store.guard.tallies(list(keys))
        return tuple(Tally(*found[k]) if k in found else None for k in keys)

    def _forgive(self, ip: str, pair: str, failures: int) -> None:
        """The right password after wrong ones from the same address for the same name: they
        were its owner's typing mistakes, and no longer count against the address. Failures
        there against other names stay: logging in to one's own account does not clear guesses
        at a colleague's."""
        now = self.clock()
        self.store.guard.add_failure([ip], now, self.rules.forget_after, count=-failures)
        self.store.guard.clear([pair])

    def _lock_account(self, protocol: str, host: str, typed: str, failures: int) -> None:
        """``guard.lock_after`` reached: the account (if the name is one that may log in) is
        locked, audited with why; ``account unlock`` undoes it and forgets the count."""
        account = self.store.accounts.get_account(typed.strip())
        if account is None or account.state not in LOGIN_STATES:
            return
        reason = f"{failures} failed logins"
        if self.store.lifecycle.change_state(account.id, account.state, AccountState.LOCKED, reason,
                                             now=_dt.datetime.now(_dt.UTC), actor="login guard", action="lock"):
            log_limit(protocol, host, "account-locked", f"account={account.address} failures={failures}")

    def _failed(self, ip: str, name: str, pair: str) -> dict[str, int]:
        now = self.clock()
        counts = self.store.guard.add_failure([ip, name, pair], now, self.rules.forget_after)
        with self._lock:
            due = now - self._pruned >= PRUNE_EVERY
            if due:
                self._pruned = now
        if due:
            try:
                self.store.guard.prune(now - self.rules.forget_after, self.settings.max_entries)
            except Exception:  # noqa: BLE001 (pruning is housekeeping; the login's answer must not fail)
                log.exception("could not prune the login failure tallies")
        return counts


class ConnectionLimits:
    """Connections at once per client address (IPv6: its /64) and service, in this process.
    Trusted clients are not counted. Used from the event loop only."""

    def __init__(self, settings: GuardSettings) -> None:
        self.settings = settings
        self.limit = settings.connections_per_address
        self._open: dict[tuple[str, str], int] = {}

    def acquire(self, service: str, host: str) -> bool:
        """Count a new connection; False (and a log line) when it is one too many."""
        if self.limit is None or is_trusted(host, self.settings.trusted):
            return True
        key = (service, client_key(host))
        count = self._open.get(key, 0)
        if count >= self.limit:
            log_limit(service, host, "connections", f"open={count}")
            return False
        self._open[key] = count + 1
        return True

    def release(self, service: str, host: str) -> None:
        if self.limit is None or is_trusted(host, self.settings.trusted):
            return
        key = (service, client_key(host))
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)
