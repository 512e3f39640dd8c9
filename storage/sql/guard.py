"""The login failures role (storage.api.LoginFailures): the login guard's tallies (R-SEC-1),
table ``login_failures``. Reads through ``reading()``, each write one job of the writer."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, func, insert, select, update

from storage.models import login_failures as t
from storage.sql.role import Role


class LoginFailures(Role):
    """Thread-safe; every method may block (call it off the event loop)."""

    def tallies(self, keys: Sequence[str]) -> dict[str, tuple[int, float]]:
        if not keys:
            return {}
        with self.reading() as conn:
            rows = conn.execute(select(t.c.key, t.c.failures, t.c.last_at).where(t.c.key.in_(list(keys))))
            return {key: (failures, last_at) for key, failures, last_at in rows}

    def add_failure(self, keys: Sequence[str], now: float, forget_after: float, count: int = 1) -> dict[str, int]:
        def job(conn: Connection, _changes: list) -> dict[str, int]:
            counts = {}
            for key in dict.fromkeys(keys):
                row = conn.execute(select(t.c.failures, t.c.last_at).where(t.c.key == key)).first()
                if row is None or (count < 0 and now - row.last_at >= forget_after):
                    if count > 0:
                        conn.execute(insert(t).values(key=key, failures=count, last_at=now))
                    counts[key] = max(0, count)
                    continue
                failures = max(0, count if now - row.last_at >= forget_after else row.failures + count)
                # a negative count (forgiving) leaves the time of the last failure as it was
                last_at = max(now, row.last_at) if count > 0 else row.last_at
                conn.execute(update(t).where(t.c.key == key).values(failures=failures, last_at=last_at))
                counts[key] = failures
            return counts

        return self.run_write(job)

    def clear(self, keys: Sequence[str]) -> None:
        if keys:
            self.run_write(lambda conn, _changes: conn.execute(delete(t).where(t.c.key.in_(list(keys)))))

    def prune(self, older_than: float, max_entries: int) -> int:
        def job(conn: Connection, _changes: list) -> int:
            removed = conn.execute(delete(t).where(t.c.last_at < older_than)).rowcount
            extra = conn.scalar(select(func.count()).select_from(t)) - max_entries
            if extra > 0:
                oldest = select(t.c.key).order_by(t.c.last_at).limit(extra).scalar_subquery()
                removed += conn.execute(delete(t).where(t.c.key.in_(oldest))).rowcount
            return removed

        return self.run_write(job)
