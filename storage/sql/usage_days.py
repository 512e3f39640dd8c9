"""Per account per day counters (``usage_days``, R-OPS-1/2), counted in memory and written in
batches.

Why batches: a login, a SELECT of INBOX or a delivery must not wait for a write of its own;
``count`` only adds to a dictionary under a lock (microseconds, safe on the event loop) and a
background thread writes what accumulated every ``interval`` seconds as one upsert job of the
store's writer, outside any delivery's transaction. ``close`` writes the rest. A process killed
with SIGKILL loses at most ``interval`` seconds of counts — figures, not mail.

Days are local days in Vietnam (Asia/Ho_Chi_Minh): a report's "day" is the agency's.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from storage import models as m
from storage.api.usage import DAY_FACTS, DayFacts
from storage.models import usage_days

log = logging.getLogger(__name__)
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
_INDEX = {name: i for i, name in enumerate(DAY_FACTS)}
_HOURS = len(DAY_FACTS)  # the check_hours bitmask sits after the counters


class DayCounter:
    def __init__(self, core, interval: float = 3.0) -> None:
        self.core = core
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, _dt.date], list[int]] = {}
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def count(self, account_id: int, fact: str, n: int = 1, at: _dt.datetime | None = None) -> None:
        """Add ``n`` to ``fact`` (one of DAY_FACTS) of the account's day; never blocks on I/O."""
        local = (at or _dt.datetime.now(_dt.UTC)).astimezone(LOCAL)
        index = _INDEX[fact]
        with self._lock:
            row = self._pending.setdefault((account_id, local.date()), [0] * (len(DAY_FACTS) + 1))
            row[index] += n
            if fact == "checks":
                row[_HOURS] |= 1 << local.hour
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name="usage-days", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 (figures; the server goes on, the counts are kept for the next try)
                log.exception("could not write the usage counters")

    def flush(self) -> int:
        """Write what was counted (one job); returns the rows written."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        try:
            self.core.run_write(lambda conn, _changes: self._upsert(conn, pending))
        except Exception:
            with self._lock:  # put them back, added to what came since
                for key, row in pending.items():
                    now = self._pending.setdefault(key, [0] * len(row))
                    for i, v in enumerate(row):
                        now[i] = now[i] | v if i == _HOURS else now[i] + v
            raise
        return len(pending)

    def _upsert(self, conn: Connection, pending: dict[tuple[int, _dt.date], list[int]]) -> None:
        ids = sorted({aid for aid, _day in pending})
        used = dict(conn.execute(select(m.Account.id, m.Account.used_bytes).where(m.Account.id.in_(ids))).all())
        rows = [{"account_id": aid, "day": day, **{f: row[i] for f, i in _INDEX.items()},
                 "check_hours": row[_HOURS], "bytes_stored": used[aid]}
                for (aid, day), row in pending.items() if aid in used]  # an account deleted since: dropped
        if not rows:
            return
        insert = (sqlite.insert if self.core.is_sqlite else postgresql.insert)(usage_days)
        t, new = usage_days.c, insert.excluded
        conn.execute(insert.on_conflict_do_update(
            index_elements=[t.account_id, t.day],
            set_={**{f: t[f] + new[f] for f in DAY_FACTS}, "check_hours": t.check_hours.op("|")(new.check_hours),
                  "bytes_stored": new.bytes_stored}), rows)

    def close(self) -> None:
        self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.flush()
        except Exception:  # noqa: BLE001
            log.exception("could not write the last usage counters")

    def prune(self, before: _dt.date) -> int:
        """Remove the rows of days before ``before`` (``reports.keep_years``); returns how many."""
        return self.core.run_write(lambda conn, _c: conn.execute(delete(usage_days).where(usage_days.c.day < before)).rowcount)

    def days(self, start: _dt.date, end: _dt.date, account_ids: Sequence[int] | None = None) -> list[DayFacts]:
        """Rows with ``start <= day <= end`` (of these accounts), by account then day."""
        query = select(usage_days).where(usage_days.c.day >= start, usage_days.c.day <= end)
        if account_ids is not None:
            query = query.where(usage_days.c.account_id.in_(list(account_ids)))
        with self.core.reading() as conn:
            return [DayFacts(**row._mapping) for row in conn.execute(query.order_by(usage_days.c.account_id, usage_days.c.day))]
