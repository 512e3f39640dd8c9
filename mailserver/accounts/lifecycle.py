"""The account lifecycle job (R-LIFE-1..5, R-PASS-1/3): applies the profile's deadlines.

Run daily inside the server at ``lifecycle.run_at`` (server local time; app.py calls
``start_lifecycle``) and on demand by ``mailserver lifecycle run [--dry-run] [--now ISO8601]``.
What is due is decided by the pure ``mailserver.policy.lifecycle.decide_account_state``; the facts
and the compare-and-set state changes are ``storage.api.Lifecycle``. Idempotent: a change
moves an account to a more restricted state, which the next run finds already done.

"deleted" (hcm-q4 art. 8.1) is a state: no login, mail refused, the address kept reserved; the
messages stay until the operator purges them with ``mailserver account delete``, so an automatic
rule never destroys mail by itself.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from dataclasses import dataclass, field
from typing import Callable

from config.settings import Settings
from mailserver.policy.lifecycle import LifecycleRules, decide_account_state, earliest_unlock_at
from mailserver.maintenance.daily import DailyJob
from storage.api import AccountState, DeliveryTarget
from storage.api import JOB, Lifecycle, Record
from storage.sql import SqlStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    """One transition made (or, in a dry run, due)."""

    address: str
    before: str
    after: str
    reason: str
    due_at: _dt.datetime
    notified: tuple[str, ...] = field(default=())  # addresses told (R-LIFE-3)
    notify_note: str = ""  # why nobody was told when the rules asked for it

    def line(self, dry_run: bool = False) -> str:
        when = self.due_at.astimezone().isoformat(timespec="seconds")
        text = f"{self.address}\t{self.before} -> {self.after}\t{self.reason}\tdue {when}"
        if self.notified:
            text += f"\t{'would notify' if dry_run else 'notified'} {', '.join(self.notified)}"
        elif self.notify_note:
            text += f"\t{self.notify_note}"
        return text


def rules_from(settings: Settings) -> LifecycleRules:
    return LifecycleRules.from_settings(settings.lifecycle, settings.passwords)


def run_lifecycle(
    store: SqlStore, settings: Settings, *, dry_run: bool, now: _dt.datetime | None = None
) -> list[Change]:
    """Decide and apply every account's due transition once; blocking (run it in a thread)."""
    now = now or _dt.datetime.now(_dt.UTC)
    rules = rules_from(settings)
    lifecycle = store.lifecycle
    changes = []
    if not dry_run:  # the old addresses of renamed accounts whose time is over (accounts.rename_alias_days)
        for old, current in store.org.expire_aliases(now):
            log.info("lifecycle: alias %s of %s removed", old, current)
            changes.append(Change(old, "alias", "removed", "rename_alias_expired", now, notify_note=f"now {current}"))
    for record in lifecycle.records():
        transition = decide_account_state(record.facts, rules, now)
        if transition is None:
            warned = _expiry_warning(store, settings, record, now, dry_run)
            if warned is not None:
                changes.append(warned)
            continue
        a = record.account
        change = Change(a.address, a.state.value, transition.state.value, transition.reason, transition.due_at)
        if not dry_run:
            detail = f"reason={transition.reason} due={transition.due_at.isoformat()}"
            if not lifecycle.change_state(a.id, a.state, AccountState(transition.state.value), transition.reason,
                                          now=now, actor=JOB, detail=detail):
                continue  # changed meanwhile (an operator, another process): theirs stands
            log.info("lifecycle: %s", change.line())
        if transition.notify_unit:
            change = _notify(store, settings, lifecycle, record, change, now, dry_run)
        changes.append(change)
    return changes


def _expiry_warning(store: SqlStore, settings: Settings, record: Record, now: _dt.datetime, dry_run: bool) -> Change | None:
    """R-PASS-4: the owner is mailed ``passwords.expiry_warning_days`` before the password expires."""
    from mailserver.accounts.notify import warn_password_expiry
    from mailserver.policy.passwords import expiry_warning_due

    f = record.facts
    due = expiry_warning_due(state=f.state, password_changed_at=f.password_changed_at, created_at=f.created_at,
                             max_age_months=settings.passwords.max_age_months,
                             warning_days=settings.passwords.expiry_warning_days, now=now)
    if due is None:
        return None
    a = record.account
    if not dry_run and not warn_password_expiry(store, settings, a, due, now):
        return None  # warned before (or the mailbox refused it)
    return Change(a.address, a.state.value, a.state.value, "password_expiry_warning", due, notified=(a.address,))


def _notify(store: SqlStore, settings: Settings, lifecycle: Lifecycle, record: Record, change: Change,
            now: _dt.datetime, dry_run: bool) -> Change:
    """Tell the unit (R-LIFE-3): its mailbox and its head, each a notice in its INBOX."""
    from dataclasses import replace

    from mailserver.mailboxes.notices import lifecycle_notice

    unit_name, people = lifecycle.unit_contacts(record.account.id)
    if not people:
        note = "no unit to notify" if unit_name is None else f"nobody in unit {unit_name} can receive the notice"
        log.info("lifecycle: %s: %s", record.account.address, note)
        return replace(change, notify_note=note)
    told = []
    f = record.facts
    last = max(t for t in (f.created_at, f.last_login_at, f.reactivated_at) if t is not None)
    for person in people:
        if not dry_run:
            raw = lifecycle_notice(
                state=change.after, reason=change.reason, address=record.account.address,
                display_name=record.account.display_name, unit_name=unit_name, due_at=change.due_at,
                last_activity=last, to=person.address, to_name=person.display_name, domains=settings.domains,
                hostname=settings.hostname, now=_dt.datetime.now(_dt.UTC),
            )
            outcome = store.messages.deliver(store.messages.put_blob(raw), [DeliveryTarget(person.id, "INBOX", quota_limit=None)])[0]
            if not outcome.ok:
                log.warning("lifecycle: notice for %s to %s not delivered: %s",
                            record.account.address, person.address, outcome.error)
                continue
        told.append(person.address)
    return replace(change, notified=tuple(told))


def unlock_refusal(store: SqlStore, settings: Settings, account_id: int, now: _dt.datetime) -> str | None:
    """Why an unlock request may not be handled yet (R-PASS-3: 5 days after a lock for an
    unchanged initial password), or None."""
    record = store.lifecycle.record(account_id)
    until = earliest_unlock_at(record.facts, rules_from(settings)) if record else None
    if until is not None and now < until:
        return (f"locked for an unchanged initial password; an unlock request is handled from "
                f"{until.astimezone().isoformat(timespec='seconds')} (R-PASS-3, profile {settings.profile})")
    return None


class LifecycleJob(DailyJob):
    """The lifecycle rules every day at ``lifecycle.run_at`` (null: only on demand)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, settings: Settings, store: SqlStore,
                 clock: Callable[[], _dt.datetime] | None = None) -> None:
        work = lambda: run_lifecycle(store, settings, dry_run=False)  # noqa: E731
        super().__init__(loop, "lifecycle", settings.lifecycle.run_at, work, clock)


def start_lifecycle(loop: asyncio.AbstractEventLoop, settings: Settings, store: SqlStore) -> LifecycleJob:
    """What app.py calls once the store is open; keep the handle and ``cancel()`` it at shutdown."""
    return LifecycleJob(loop, settings, store).start()
