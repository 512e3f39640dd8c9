"""The core every role of the SQL store shares: the engines (a reader pool and the writer's),
the one writer thread (storage/writer.py, group commit), the change notifier (listeners, and
LISTEN/NOTIFY on PostgreSQL), the blob files, the write primitive (storage/sql/place.py), the
recipient cache (SQLite) and the row helpers several roles use.

Not part of the storage API: the roles (storage/sql/accounts.py, folders.py, messages.py,
search.py, org.py, queue.py, usage.py, lifecycle.py) are built over one core and composed into
the store (storage/sql/store.py).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import threading
from pathlib import Path
from typing import Callable, Sequence

from sqlalchemy import Connection, delete, insert, select, update

from storage import api, models as m
from storage.blobs import BlobFiles
from storage.engine import is_sqlite, make_engine, normalise_url
from storage.errors import Invalid, NotFound
from storage.indexing import index_columns
from storage.mime import fold as _fold, parse as _parse
from storage.mime.parser import DEFAULT_MAX_DEPTH
from storage.pgnotify import Notifier
from storage.recipients import RecipientCache
from storage.sql.place import Placement, placer
from storage.sqlrows import _canonical, _chunks, _from_db, _utcnow
from storage.writer import Writer

log = logging.getLogger("storage.sqlstore")

#: the search indexer works once no write has come for this long (seconds)
INDEX_QUIET_S = 0.3


def lock_accounts(conn: Connection, jobs: list) -> None:
    """PostgreSQL, first in a batch's transaction: lock the accounts its deliveries will charge,
    in id order. Each delivery locks its accounts in id order, but a batch of several, or a
    fan-out placed in chunks, would otherwise take them in no common order, and two processes'
    batches then deadlock: PostgreSQL ends one after ``deadlock_timeout`` (1 s, both stalled)
    and its jobs fail. One job with one account needs nothing more."""
    ids = sorted({a for job in jobs for a in getattr(job, "accounts", ())})
    if len(ids) > 1:
        conn.exec_driver_sql("SELECT id FROM accounts WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (ids,))


class StoreCore:
    """Thread-safe: reads run on the caller's thread with a pooled connection; ``run_write``
    queues a job for the writer thread and returns once its group commit is durable."""

    def __init__(
        self,
        url: str,
        *,
        blob_dir: Path,
        inline_blob_limit: int = 256 * 1024,
        max_batch: int = 256,
        fold_diacritics: bool = True,
        index_quiet_s: float = INDEX_QUIET_S,
        recipient_cache_ttl: float = 10.0,
        mime_max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.url = normalise_url(url)
        self._mime_max_depth = mime_max_depth
        self._index_quiet_s = index_quiet_s
        self._sqlite = is_sqlite(self.url)
        self._read = make_engine(self.url, writer=False)
        self._write_engine = make_engine(self.url, writer=True)
        self._blobs = BlobFiles(blob_dir, inline_limit=inline_blob_limit if self._sqlite else None)
        self._fold_diacritics = fold_diacritics
        self._listeners: list[Callable[[list[api.FolderChange]], None]] = []
        self._listeners_lock = threading.Lock()
        self._notifier = None if self._sqlite else Notifier(self.url, self._notify)
        # SQLite only: one process, whose writer sees every commit (storage/recipients.py).
        self._recipients = RecipientCache(recipient_cache_ttl) if self._sqlite else None
        self._data_version: int | None = None  # the writer connection's, when last looked at
        # A reader connection kept to watch for commits (peek_account), and its data_version
        # when the cache was last known to hold nothing older than the database.
        self._watch = self._read.raw_connection() if self._recipients is not None else None
        self._watch_lock = threading.Lock()
        self._valid_at: int | None = None
        self._writer = Writer(
            self._write_engine, max_batch=max_batch, on_commit=self._notify,
            before_commit=self._notifier.send if self._notifier else None,
            settle=self._settle if self._recipients is not None else None,
            idle=self._idle if self._recipients is not None else None,
            before_jobs=None if self._sqlite else lock_accounts,
        )
        self._placer = placer(self._sqlite)
        self._closing = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        self._closing.set()
        self._writer.close()
        if self._notifier is not None:
            self._notifier.close()
        if self._watch is not None:
            self._watch.close()
        self._read.dispose()
        self._write_engine.dispose()

    def subscribe(self, listener: Callable[[list[api.FolderChange]], None]) -> Callable[[], None]:
        with self._listeners_lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _notify(self, changes: list[api.FolderChange]) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(changes)
            except Exception:
                log.exception("store listener failed")

    # -- the recipient cache (SQLite; storage/recipients.py) -----------------------------------
    def _watched_version(self) -> int:
        """SQLite's data_version on the watching connection: it moves at every commit of any
        other connection (ours included). A read of SQLite's shared memory (two fcntl calls,
        ~4 µs, no disk): the one database call made on the event loop, by ``peek_account``."""
        with self._watch_lock:
            cur = self._watch.dbapi_connection.cursor()
            try:
                return cur.execute("PRAGMA data_version").fetchone()[0]
            finally:
                cur.close()

    def _cached_account(self, address: str) -> api.Account | None:
        account = self._recipients.get(address)
        if account is None or self._closing.is_set():
            return None
        try:
            current = self._watched_version()
        except Exception:  # noqa: BLE001 - the look-up in a thread will say what is wrong
            log.warning("data_version unreadable; asking the database", exc_info=True)
            return None
        return account if current == self._valid_at else None  # else a commit not yet accounted for

    def _settle(self, conn: Connection, ran: list) -> None:
        """Writer thread, after a commit and before its callers hear of it: deliveries add to
        the cached usage; anything else, or a commit by another process, clears the cache."""
        charges: dict[int, tuple[int, int]] = {}
        only_deliveries = True
        for job, result, error in ran:
            kind = getattr(job, "directory", None)
            if error is not None or kind == "neutral":  # rolled back, or search upkeep
                continue
            if kind == "delivery":
                for outcome in result:
                    if outcome.ok:
                        size, count = charges.get(outcome.account_id, (0, 0))
                        charges[outcome.account_id] = (size + job.size, count + 1)
                continue
            only_deliveries = False
        self._revalidate(conn, clear=not only_deliveries, charges=charges)

    def _idle(self, conn: Connection) -> None:
        self._revalidate(conn, clear=False, charges={})

    def _revalidate(self, conn: Connection, *, clear: bool, charges: dict[int, tuple[int, int]]) -> None:
        """Account for every commit up to now: ``clear`` for a change of ours other than
        deliveries, and the cache is cleared as well after a commit by another connection."""
        cache = self._recipients
        self._valid_at = None  # peeks ask the database until this pass is done
        try:
            # First the version that will vouch for the cache, then the look for commits by
            # others: one landing between the two is seen by the look, one after it moves the
            # version again, so no commit can hide behind the new mark.
            version = self._watched_version()
            theirs = not self._others_committed_nothing(conn)
            if clear or theirs:
                cache.clear()
            elif charges:
                cache.charge(charges)
        except Exception:
            cache.clear()
            raise
        self._valid_at = version

    def _others_committed_nothing(self, conn: Connection) -> bool:
        """SQLite's data_version on the writer's own connection moves only when another
        connection (another process: the operator's CLI) committed since the last look."""
        cur = conn.connection.dbapi_connection.cursor()
        try:
            (version,) = cur.execute("PRAGMA data_version").fetchone()
        finally:
            cur.close()
        unchanged = version == self._data_version
        self._data_version = version
        return unchanged

    def fold(self, text: str) -> str:
        return _fold(text, diacritics=self._fold_diacritics)

    def parse_message(self, source, *, measure: bool = False, search_text: bool | None = None) -> dict:
        """``storage.mime.parse`` with this store's options. SQLite: the search text of the body
        and of all header fields is left to the indexer (``SqlSearch.fill_bodies``), unless asked."""
        if search_text is None:
            search_text = not self._sqlite
        return _parse(source, search_text=search_text, max_depth=self._mime_max_depth, measure=measure)

    # -- for the roles ---------------------------------------------------------------------------
    def reading(self):
        """A read transaction on a pooled connection (``with store.reading() as conn``)."""
        return self._read.begin()

    def run_write(self, job: Callable[[Connection, list[api.FolderChange]], object]):
        """Run ``job(conn, changes)`` in the next group commit; returns once durable."""
        return self._writer.run(job)

    @property
    def is_sqlite(self) -> bool:
        return self._sqlite

    _reading = reading

    @contextlib.contextmanager
    def _raw_read(self):
        """A DB-API cursor on a pooled reader connection (the pool rolls back on return)."""
        conn = self._read.raw_connection()
        try:
            cur = conn.cursor()
            try:
                yield cur
            finally:
                cur.close()
        finally:
            conn.close()

    def _when(self, value) -> _dt.datetime:
        if isinstance(value, str):  # SQLite stores DateTime as text
            value = _dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=_dt.UTC)

    def _ensure_blob(self, conn: Connection, blob: api.BlobRef) -> None:
        """The body's rows, for a job that works through SQLAlchemy (the outbound queue)."""
        columns = blob.index if blob.index is not None else index_columns(blob.meta, self.fold)
        cur = conn.connection.cursor()
        try:
            self._placer.ensure_blob(cur, blob, columns, _utcnow())
        finally:
            cur.close()

    def _bump(self, conn: Connection, folder_id: int) -> int:
        return conn.execute(
            update(m.Folder)
            .where(m.Folder.id == folder_id)
            .values(highestmodseq=m.Folder.highestmodseq + 1)
            .returning(m.Folder.highestmodseq)
        ).scalar_one()

    def _place(self, conn: Connection, placements: Sequence[Placement]) -> list:
        """storage/sql/place.py on this job's connection: every path that adds messages."""
        cur = conn.connection.cursor()
        try:
            return self._placer.place(cur, placements)
        finally:
            cur.close()

    # -- rows several roles read or write -------------------------------------------------------
    # -- folders --------------------------------------------------------------------------------
    @staticmethod
    def _folder(row) -> api.Folder:
        return api.Folder(
            id=row.id,
            account_id=row.account_id,
            name=row.name,
            special_use=row.special_use,
            subscribed=bool(row.subscribed),
            uidvalidity=row.uidvalidity,
            uidnext=row.uidnext,
            highestmodseq=row.highestmodseq,
        )

    @staticmethod
    def _insert_folder(conn: Connection, account_id: int, name: str, special_use: str | None) -> int:
        # UIDVALIDITY must never repeat for a name, even after DELETE and CREATE (RFC 3501 2.3.1.1).
        latest = conn.scalar(select(m.Account.last_uidvalidity).where(m.Account.id == account_id)) or 0
        uidvalidity = max(int(_dt.datetime.now(_dt.UTC).timestamp()), latest + 1)
        conn.execute(update(m.Account).where(m.Account.id == account_id).values(last_uidvalidity=uidvalidity))
        return conn.execute(
            insert(m.Folder)
            .values(
                account_id=account_id,
                name=name,
                special_use=special_use,
                subscribed=True,
                uidvalidity=uidvalidity,
                uidnext=1,
                highestmodseq=1,
                recent_floor=1,
            )
            .returning(m.Folder.id)
        ).scalar_one()

    @staticmethod
    def _subscribe_defaults(conn: Connection, account_id: int) -> None:
        """A new account is subscribed to its default folders (CREATE does not subscribe)."""
        conn.execute(insert(m.subscriptions), [{"account_id": account_id, "name": name} for name, _ in api.DEFAULT_FOLDERS])

    def _get_folder(self, conn: Connection, account_id: int, name: str) -> api.Folder:
        row = conn.execute(
            select(m.Folder).where(m.Folder.account_id == account_id, m.Folder.name == _canonical(name))
        ).first()
        if row is None:
            raise NotFound(f"folder {name!r}")
        return self._folder(row)

    def _folder_by_id(self, conn: Connection, folder_id: int) -> api.Folder:
        row = conn.execute(select(m.Folder).where(m.Folder.id == folder_id)).first()
        if row is None:
            raise NotFound(f"folder {folder_id}")
        return self._folder(row)

    def _remove_messages(self, conn: Connection, folder: api.Folder, rows: list, modseq: int) -> None:
        """Delete message rows, log them as expunged and release their quota, in this transaction."""
        uids = [r.uid for r in rows]
        for part in _chunks(uids):
            conn.execute(delete(m.Message).where(m.Message.folder_id == folder.id, m.Message.uid.in_(part)))
        if uids:
            conn.execute(insert(m.Expunged), [{"folder_id": folder.id, "uid": u, "modseq": modseq} for u in uids])
            self._charge(conn, folder.account_id, -sum(r.size for r in rows), -len(rows))

    @staticmethod
    def _charge(conn: Connection, account_id: int, size: int, count: int) -> None:
        conn.execute(
            update(m.Account)
            .where(m.Account.id == account_id)
            .values(used_bytes=m.Account.used_bytes + size, used_messages=m.Account.used_messages + count)
        )

    # -- accounts -------------------------------------------------------------------------------
    @staticmethod
    def _account(row) -> api.Account:
        return api.Account(
            id=row.id,
            address=row.address,
            display_name=row.display_name,
            kind=api.AccountKind(row.kind),
            state=api.AccountState(row.state),
            password_hash=row.password_hash,
            created_at=_from_db(row.created_at),
            password_changed_at=_from_db(row.password_changed_at),
            last_login_at=_from_db(row.last_login_at),
            quota_bytes=row.quota_bytes,
            used_bytes=row.used_bytes,
            used_messages=row.used_messages,
        )

    @staticmethod
    def _normalise_address(address: str) -> str:
        address = address.strip()
        local, sep, domain = address.rpartition("@")
        if not sep or not local or not domain:
            raise Invalid(f"invalid address {address!r}")
        return f"{local.lower()}@{domain.lower().rstrip('.')}"
