"""Exclusive locks that hold across the server processes on one store (the POP3 maildrop lock).

A lock excludes other processes; within a process the caller excludes its own sessions (POP3
keeps a set of the maildrops it holds, pop3/maildrop.py), and may take a lock it holds again:
each take needs its own release. SQLite serves one process, so there is nothing to exclude.
PostgreSQL serves several: a lock is a session-level advisory lock
(``pg_try_advisory_lock(class, key)``) on one connection this process keeps for the purpose, so
a process that dies (even ``kill -9``) releases its locks with its connection and no lease has
to run out. Advisory locks count per connection as these do: a release still on its way while
the same process takes the lock again leaves it correctly held once. The class is derived from
the lock's name and the schema, so stores in different schemas of one database (tests, several
tenants) never collide.
"""

from __future__ import annotations

import logging
import threading
import zlib

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)


def lock_class(schema: str, name: str) -> int:
    """A signed 32-bit advisory-lock class for ``name`` within ``schema``."""
    value = zlib.crc32(f"{schema}:{name}".encode())
    return value - (1 << 32) if value >= 1 << 31 else value


class SessionLocks:
    """See storage.api.SessionLocks. Blocking on PostgreSQL: call from a worker thread."""

    def __init__(self, url: str, *, shared: bool) -> None:
        self._url = url
        self._shared = shared
        self._count: dict[tuple[str, int], int] = {}  # takes not yet released, by this process
        self._mutex = threading.Lock()  # the counts and the connection
        self._conn = None
        self._schema: str | None = None

    def try_lock(self, name: str, key: int) -> bool:
        with self._mutex:
            if self._shared and not self._advisory("pg_try_advisory_lock", name, key):
                return False
            self._count[(name, key)] = self._count.get((name, key), 0) + 1
            return True

    def unlock(self, name: str, key: int) -> None:
        with self._mutex:
            left = self._count.get((name, key), 0) - 1
            if left < 0:
                return  # not taken here
            if left:
                self._count[(name, key)] = left
            else:
                del self._count[(name, key)]
            if self._shared:
                try:
                    self._advisory("pg_advisory_unlock", name, key)
                except Exception:  # the connection went: the lock went with it
                    log.warning("advisory unlock failed for %s %s", name, key, exc_info=True)

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _advisory(self, function: str, name: str, key: int) -> bool:
        conn = self._connection()
        try:
            row = conn.execute(f"SELECT {function}(%s, %s)", (lock_class(self._schema, name), key)).fetchone()
        except Exception:
            self._drop()
            raise
        return bool(row[0])

    def _connection(self):
        """The lock connection, opened on first use. When it was lost (a database restart), the
        locks this process still holds are taken again on the new one."""
        import psycopg

        if self._conn is not None and not self._conn.closed:
            return self._conn
        url = make_url(self._url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn = psycopg.connect(url, autocommit=True)
        self._schema = self._conn.execute("SELECT current_schema()").fetchone()[0] or "public"
        for (name, key), count in sorted(self._count.items()):
            for _ in range(count):
                again = self._conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (lock_class(self._schema, name), key))
                if not again.fetchone()[0]:
                    log.warning("lock %s %s was taken elsewhere while the connection was down", name, key)
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self._conn = None
