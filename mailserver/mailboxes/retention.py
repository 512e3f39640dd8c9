"""Retention (R-QUOTA-2): expunge old mail by the per-folder rules of ``retention.rules``.

Run daily inside the server at ``retention.run_at`` (server local time; app.py calls
``start_retention``) and on demand by ``mailserver retention run [--dry-run]``. The rule
arithmetic (which rule covers a folder, the cutoff) is ``quota.retention``; the removal is
``storage.api.Usage.expire`` (change log written, quota released, IDLE sessions told).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from typing import Callable

from config.settings import Settings
from mailserver.maintenance.daily import DailyJob
from quota.retention import RetentionRule
from storage.sql import SqlStore
from storage.api import Expired

log = logging.getLogger(__name__)


def rules_from(settings: Settings) -> tuple[RetentionRule, ...]:
    result = []
    for rule in settings.retention.rules:
        days, months = rule.period()
        result.append(RetentionRule(rule.folder, older_than_days=days, older_than_months=months))
    return tuple(result)


def run_retention(
    store: SqlStore, settings: Settings, *, dry_run: bool, now: _dt.datetime | None = None
) -> list[Expired]:
    """Apply every rule to every account once; blocking (run it in a thread)."""
    now = now or _dt.datetime.now(_dt.UTC)
    expired = store.usage.expire(rules_from(settings), now, dry_run=dry_run, keep=settings.retention.kept())
    if not dry_run and expired:
        log.info("retention: expunged %d message(s), %d bytes released", len(expired), sum(e.size for e in expired))
    if not dry_run:
        warn_ahead(store, settings, now)
    return expired


def _announced_rules(settings: Settings) -> tuple[RetentionRule, ...]:
    """The rules a notice announces: those on the owner's own folders, not Junk and Trash."""
    return tuple(r for r in rules_from(settings) if not r.folder.startswith("\\"))


def upcoming(store: SqlStore, settings: Settings, now: _dt.datetime) -> list[Expired]:
    """Messages that enter the deletion window today: expired ``notice_days`` from now but not
    a day earlier. The daily run announces each message once, a week ahead (R-QUOTA-2)."""
    days, rules = settings.retention.notice_days, _announced_rules(settings)
    if not days or not rules:
        return []
    keep = settings.retention.kept()
    later = store.usage.expire(rules, now + _dt.timedelta(days=days), dry_run=True, keep=keep)
    earlier = {(e.account_id, e.folder, e.uid)
               for e in store.usage.expire(rules, now + _dt.timedelta(days=days - 1), dry_run=True, keep=keep)}
    return [e for e in later if (e.account_id, e.folder, e.uid) not in earlier]


def _rule_text(rules: tuple[RetentionRule, ...]) -> str:
    months = {r.older_than_months for r in rules if r.older_than_months}
    days = {r.older_than_days for r in rules if r.older_than_days}
    if len(months) == 1 and not days:
        n = months.pop()
        return f"quá {n} tháng / older than {n} months"
    if len(days) == 1 and not months:
        n = days.pop()
        return f"quá {n} ngày / older than {n} days"
    return "quá thời hạn lưu giữ / past its retention period"


def warn_ahead(store: SqlStore, settings: Settings, now: _dt.datetime) -> int:
    """Tell each owner, in their INBOX, what the run ``notice_days`` from now deletes; returns
    the number of notices delivered."""
    from mailserver.mailboxes.notices import build_message, postmaster
    from quota.notices import retention_warning
    from storage.api import DeliveryTarget

    soon = upcoming(store, settings, now)
    if not soon:
        return 0
    when = (now + _dt.timedelta(days=settings.retention.notice_days or 0)).astimezone().strftime("%d/%m/%Y")
    by_account: dict[tuple[int, str], dict[str, list[Expired]]] = {}
    for e in soon:
        by_account.setdefault((e.account_id, e.address), {}).setdefault(e.folder, []).append(e)
    sent = 0
    for (account_id, address), folders in sorted(by_account.items(), key=lambda item: item[0][1]):
        notice = retention_warning(address, [(f, len(es), sum(e.size for e in es)) for f, es in sorted(folders.items())],
                                   when, _rule_text(_announced_rules(settings)))
        raw = build_message(sender=postmaster(settings.domains), to=address, to_name=None, subject=notice.subject,
                            body=notice.body, hostname=settings.hostname, now=now, kind="retention")
        outcome = store.messages.deliver(store.messages.put_blob(raw), [DeliveryTarget(account_id, "INBOX", quota_limit=None)])[0]
        if outcome.ok:
            sent += 1
            log.info("retention: %s told that %d message(s) will be deleted on %s", address, sum(map(len, folders.values())), when)
        else:
            log.warning("retention: notice to %s not delivered: %s", address, outcome.error)
    return sent


class RetentionJob(DailyJob):
    """Retention every night at ``retention.run_at`` (only when there are rules)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, settings: Settings, store: SqlStore,
                 clock: Callable[[], _dt.datetime] | None = None) -> None:
        run_at = settings.retention.run_at if settings.retention.rules else None
        super().__init__(loop, "retention", run_at, lambda: run_retention(store, settings, dry_run=False), clock)


def start_retention(loop: asyncio.AbstractEventLoop, settings: Settings, store: SqlStore) -> RetentionJob:
    """What app.py calls once the store is open; keep the handle and ``cancel()`` it at shutdown."""
    return RetentionJob(loop, settings, store).start()
