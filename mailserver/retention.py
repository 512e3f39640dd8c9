"""Retention (R-QUOTA-2): expunge old mail by the per-folder rules of ``retention.rules``.

Run daily inside the server at ``retention.run_at`` (server local time; app.py calls
``start_retention``) and on demand by ``mailserver retention run [--dry-run]``. The rule
arithmetic (which rule covers a folder, the cutoff) is ``quota.retention``; the removal is
``storage.usage.Usage.expire`` (change log written, quota released, IDLE sessions told).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from typing import Callable

from config.settings import Settings
from quota.retention import RetentionRule
from storage.sqlstore import SqlStore
from storage.usage import Expired, Usage

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
    expired = Usage(store).expire(rules_from(settings), now, dry_run=dry_run)
    if not dry_run and expired:
        log.info("retention: expunged %d message(s), %d bytes released", len(expired), sum(e.size for e in expired))
    return expired


def next_run(run_at: str, now: _dt.datetime) -> _dt.datetime:
    """The next local ``HH:MM`` strictly after ``now`` (an aware local datetime)."""
    hour, minute = (int(x) for x in run_at.split(":"))
    candidate = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= now:
        candidate = (candidate + _dt.timedelta(days=1)).replace(hour=hour, minute=minute)
    return candidate


class RetentionJob:
    """The daily job on the server's event loop; ``cancel()`` stops it (shutdown)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, settings: Settings, store: SqlStore,
                 clock: Callable[[], _dt.datetime] | None = None) -> None:
        self.loop = loop
        self.settings = settings
        self.store = store
        self.clock = clock or (lambda: _dt.datetime.now().astimezone())
        self.runs = 0
        self.task: asyncio.Task | None = None

    def start(self) -> RetentionJob:
        if self.settings.retention.run_at is not None and self.settings.retention.rules:
            self.task = self.loop.create_task(self._loop(), name="retention")
        return self

    async def _loop(self) -> None:
        while True:
            now = self.clock()
            delay = (next_run(self.settings.retention.run_at, now) - now).total_seconds()
            await asyncio.sleep(max(delay, 0))
            try:
                await self.loop.run_in_executor(None, lambda: run_retention(self.store, self.settings, dry_run=False))
            except asyncio.CancelledError:
                raise
            except Exception:  # the next night tries again
                log.exception("retention run failed")
            self.runs += 1

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


def start_retention(loop: asyncio.AbstractEventLoop, settings: Settings, store: SqlStore) -> RetentionJob:
    """What app.py calls once the store is open; keep the handle and ``cancel()`` it at shutdown."""
    return RetentionJob(loop, settings, store).start()
