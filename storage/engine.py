"""Engines for SQLite (embedded default) and PostgreSQL (scale-out), with the same models.

SQLite: WAL, ``synchronous=FULL`` (an acknowledged message survives power loss), and the driver's
own transaction handling turned off so we emit ``BEGIN IMMEDIATE`` for the writer (deferred BEGIN
gave "database is locked" and lost updates under load; docs/libraries.md, SQLAlchemy and SQLite)
and plain ``BEGIN`` for readers, which then see one consistent snapshot per transaction.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool


#: Readers map this much of the database file: a page is then a pointer into the OS page cache,
#: not a read() into each connection's own 2 MB cache, which 100 bodies of 13 KB overflow and
#: evict (FETCH of 100 bodies: 0.75 ms of SQLite reads became 0.34 ms). Searches did so already
#: (SqlStore._search_conn). Touched pages count in the process's RSS as file-backed, shared and
#: reclaimable memory (bench/imap.py prints both).
READER_MMAP = 1 << 40


def normalise_url(url: str) -> str:
    """``postgresql://`` (what operators write) → the psycopg 3 dialect."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, writer: bool) -> Engine:
    url = normalise_url(url)
    if not is_sqlite(url):
        size = 1 if writer else 8
        # Readers ping a pooled connection before use (a database restart costs nobody an error).
        # The writer does not: it runs a batch per commit, the ping would be one more round trip
        # in the path of every 250, and a dead connection fails that batch as Temp (the senders
        # retry) while SQLAlchemy replaces the connection for the next one.
        return create_engine(url, poolclass=QueuePool, pool_size=size, max_overflow=0 if writer else 8,
                             pool_pre_ping=not writer)  # fmt: skip
    # Readers: the most recently returned connection first, so its page cache is the warm one.
    pool = {"pool_size": 1, "max_overflow": 0} if writer else {"pool_size": 8, "max_overflow": 8, "pool_use_lifo": True}
    engine = create_engine(url, poolclass=QueuePool, connect_args={"check_same_thread": False, "timeout": 30}, **pool)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # noqa: ANN001 - DB-API objects
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if not writer:
            cur.execute(f"PRAGMA mmap_size={READER_MMAP}")
        cur.close()

    begin_sql = "BEGIN IMMEDIATE" if writer else "BEGIN"

    @event.listens_for(engine, "begin")
    def _begin(conn):  # noqa: ANN001
        conn.exec_driver_sql(begin_sql)

    return engine
