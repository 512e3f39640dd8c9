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
    expired = store.usage.expire(rules_from(settings), now, dry_run=dry_run)
    if not dry_run and expired:
        log.info("retention: expunged %d message(s), %d bytes released", len(expired), sum(e.size for e in expired))
    return expired


class RetentionJob(DailyJob):
    """Retention every night at ``retention.run_at`` (only when there are rules)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, settings: Settings, store: SqlStore,
                 clock: Callable[[], _dt.datetime] | None = None) -> None:
        run_at = settings.retention.run_at if settings.retention.rules else None
        super().__init__(loop, "retention", run_at, lambda: run_retention(store, settings, dry_run=False), clock)


def start_retention(loop: asyncio.AbstractEventLoop, settings: Settings, store: SqlStore) -> RetentionJob:
    """What app.py calls once the store is open; keep the handle and ``cancel()`` it at shutdown."""
    return RetentionJob(loop, settings, store).start()
