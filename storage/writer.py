"""The one writer thread: batches concurrent write jobs into one transaction (group commit).

Why: on SQLite only one writer can hold the lock, and a durable commit costs an fsync. Taking
every job that is waiting and committing them together makes durability cost one fsync per
batch instead of one per message, while each job still runs in its own SAVEPOINT so a failing
job (quota, not found) rolls back alone. Callers block until their batch is committed; only then
may a front end say 250 / OK (docs/architecture.md, "The writer and group commit").
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from typing import Any, Callable

from sqlalchemy import Connection, Engine

from storage.api import FolderChange
from storage.errors import StoreError, Temp

log = logging.getLogger(__name__)

Job = Callable[[Connection, list[FolderChange]], Any]


class Writer:
    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int,
        on_commit: Callable[[list[FolderChange]], None],
        before_commit: Callable[[Connection, list[FolderChange]], None] | None = None,
        settle: Callable[[Connection, list[tuple[Job, Any, BaseException | None]]], None] | None = None,
        idle: Callable[[Connection], None] | None = None,
        idle_every: float = 0.05,
        before_jobs: Callable[[Connection, list[Job]], None] | None = None,
    ) -> None:
        """``before_commit(conn, changes)`` runs inside the transaction just before COMMIT (the
        PostgreSQL store sends NOTIFY there, which PostgreSQL delivers only if the commit succeeds).
        ``settle(conn, [(job, result, error)])`` runs after the COMMIT and before any caller is
        released, ``idle(conn)`` every ``idle_every`` seconds without work (storage/recipients.py:
        the store's cache must not outlive what was committed). ``before_jobs(conn, jobs)`` runs
        first in each transaction (the PostgreSQL store locks the accounts the jobs will change,
        in one order, so that two processes' batches never wait for each other in a cycle)."""
        self._engine = engine
        self._before_jobs = before_jobs
        self._before_commit = before_commit
        self._settle = settle
        self._idle = idle
        self._idle_every = idle_every
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._closed = False
        self._conn: Connection | None = None  # kept from batch to batch (writer thread only)
        self._closing = threading.Lock()  # no job may be queued behind the stop marker
        #: time.monotonic() of the last job that was not background upkeep
        self.last_foreground = 0.0
        self._thread.start()

    def run(self, job: Job, *, background: bool = False) -> Any:
        """Run ``job(conn, changes)`` in the next group commit; return its result once durable.
        ``background``: upkeep (the search indexer) that does not count as activity in
        ``last_foreground``, by which such upkeep waits for a quiet moment."""
        return self.submit(job, background=background).result()

    def submit(self, job: Job, *, background: bool = False) -> concurrent.futures.Future:
        """``run`` without waiting: the future holds the job's result (or error) once its batch
        is durably committed. Never blocks, so an event loop may call it and await the future
        (``asyncio.wrap_future``) instead of parking a thread on each pending commit."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._closing:
            if self._closed:
                raise Temp("store is closed")
            self._queue.put((job, future))
        if not background:
            self.last_foreground = time.monotonic()
        return future

    def close(self) -> None:
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout=10)

    def _take_batch(self) -> list | None:
        if self._idle is None:
            first = self._queue.get()
        else:
            while True:
                try:
                    first = self._queue.get(timeout=self._idle_every)
                    break
                except queue.Empty:
                    self._run_idle()
        if first is None:
            return None
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                self._fail_queued()
                self._drop_connection()
                return
            try:
                self._commit_batch(batch)
            except Exception:  # the writer must outlive any single bad batch
                log.exception("writer batch failed")
                for _job, fut in batch:
                    if not fut.done():
                        fut.set_exception(Temp("storage unavailable"))

    def _run_idle(self) -> None:
        try:
            if self._conn is None or self._conn.closed or self._conn.invalidated:
                self._conn = self._engine.connect()
            self._idle(self._conn)
        except Exception:  # noqa: BLE001 - upkeep: a broken connection is replaced before the next batch
            log.warning("writer idle task failed; reconnecting", exc_info=True)
            self._drop_connection()

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken; the next batch connects anew
                log.debug("closing the writer's connection failed", exc_info=True)

    def _fail_queued(self) -> None:
        """Jobs still queued at the stop marker (none, since submit and close share a lock) get
        an error rather than a caller blocked for ever on their future."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[1].set_exception(Temp("store is closed"))

    def _commit_batch(self, batch: list) -> None:
        """Optimistic first: the whole batch in one transaction without savepoints (they cost more
        than most jobs). If any job fails, roll everything back and run the batch again with one
        SAVEPOINT per job, so only the failing job is undone. Jobs are functions of the database
        state, so running one again after a rollback is safe."""
        try:
            outcomes, changes = self._run_jobs(batch, savepoints=False)
        except _Retry:
            outcomes, changes = self._run_jobs(batch, savepoints=True)
        # Committed (the context manager raised otherwise): release the callers.
        if self._settle is not None:
            try:
                self._settle(self._conn, [(job, result, exc) for (job, _f), (_f2, result, exc) in zip(batch, outcomes)])
            except Exception:
                log.exception("writer settle hook failed")
        for fut, result, exc in outcomes:
            if exc is None:
                fut.set_result(result)
            elif isinstance(exc, StoreError):
                fut.set_exception(exc)
            else:
                fut.set_exception(Temp(f"{type(exc).__name__}: {exc}"))
        if changes:
            try:
                self._on_commit(changes)
            except Exception:
                log.exception("change listener failed")

    def _run_jobs(self, batch: list, *, savepoints: bool):
        outcomes: list[tuple[concurrent.futures.Future, Any, BaseException | None]] = []
        changes: list[FolderChange] = []
        # One connection for the writer's life: checking it out of the pool and back for every
        # batch was a sixth of the writer's Python time. Dropped after any failure but a retry,
        # so a broken connection (a PostgreSQL restart) is replaced by the next batch.
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._conn = self._engine.connect()
        try:
            with conn.begin() as transaction:
                if self._before_jobs is not None:
                    self._before_jobs(conn, [job for job, _fut in batch])
                for job, fut in batch:
                    job_changes: list[FolderChange] = []
                    savepoint = conn.begin_nested() if savepoints else None
                    try:
                        result = job(conn, job_changes)
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        if savepoint is None:
                            transaction.rollback()
                            raise _Retry() from exc
                        savepoint.rollback()
                        if not isinstance(exc, StoreError):
                            log.exception("write job failed")
                        outcomes.append((fut, None, exc))
                    else:
                        if savepoint is not None:
                            savepoint.commit()
                        changes.extend(job_changes)
                        outcomes.append((fut, result, None))
                if changes and self._before_commit is not None:
                    self._before_commit(conn, changes)
        except _Retry:
            raise
        except BaseException:
            self._drop_connection()
            raise
        return outcomes, changes


class _Retry(Exception):
    """A job failed in the optimistic pass; the batch runs again with savepoints."""
