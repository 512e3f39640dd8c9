"""Jobs the server runs once a day at a local time of day (retention R-QUOTA-2, lifecycle R-LIFE-*).

The work runs in a worker thread (it reads and writes the store); a failure is logged and the
next day tries again, so one bad night never stops the job. ``cancel()`` stops it at shutdown.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from typing import Callable

log = logging.getLogger(__name__)


def next_run(run_at: str, now: _dt.datetime) -> _dt.datetime:
    """The next local ``HH:MM`` strictly after ``now`` (an aware local datetime)."""
    hour, minute = (int(x) for x in run_at.split(":"))
    candidate = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= now:
        candidate = (candidate + _dt.timedelta(days=1)).replace(hour=hour, minute=minute)
    return candidate


class DailyJob:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        name: str,
        run_at: str | None,
        work: Callable[[], object],
        clock: Callable[[], _dt.datetime] | None = None,
    ) -> None:
        self.loop = loop
        self.name = name
        self.run_at = run_at  # None: never (the operator runs the command instead)
        self.work = work
        self.clock = clock or (lambda: _dt.datetime.now().astimezone())
        self.runs = 0
        self.task: asyncio.Task | None = None

    def start(self) -> DailyJob:
        if self.run_at is not None:
            self.task = self.loop.create_task(self._loop(), name=self.name)
        return self

    async def _loop(self) -> None:
        assert self.run_at is not None
        while True:
            now = self.clock()
            await asyncio.sleep(max((next_run(self.run_at, now) - now).total_seconds(), 0))
            try:
                await self.loop.run_in_executor(None, self.work)
            except asyncio.CancelledError:
                raise
            except Exception:  # the next day tries again
                log.exception("%s run failed", self.name)
            self.runs += 1

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
