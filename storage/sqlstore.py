"""SqlStore: the storage API (storage/api.py) on SQLAlchemy, for SQLite and PostgreSQL.

Reads run on the caller's thread with their own pooled connection; every write is a job for the
one writer thread (storage/writer.py), which commits concurrent jobs together. See storage/api.py
for the contract each method keeps.
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import contextlib
import functools
import io
from dataclasses import replace
import logging
import queue
import threading
from pathlib import Path
from typing import BinaryIO, Callable, Collection, Iterable, Iterator, Mapping, Sequence

import orjson
from sqlalchemy import Connection, bindparam, insert, select, update

from storage import api, models as m
from storage.blobs import BlobFiles
from storage.engine import is_sqlite, make_engine, normalise_url
from storage.errors import Invalid, NoQuota, NotFound
from storage.flags import join as join_flags, pack_keywords, split as split_flags
from storage.indexing import index_columns
from storage.mime import fold as _fold, parse as _parse
from storage.mime.parser import DEFAULT_MAX_DEPTH
from storage.mime.reuse import with_head
from storage.writer import Writer
from storage.pgnotify import Notifier
from storage.recipients import RecipientCache
from storage.hotpath import HotPath
from storage.sql_accounts import AccountsMixin
from storage.sql_folders import FoldersMixin
from storage.sql_search import _INDEX_QUIET_S, SearchMixin
from storage.sqlrows import CHUNK, DELETED, SEEN, _canonical, _chunks, _from_db, _to_db, _utcnow

log = logging.getLogger(__name__)


class SqlStore(AccountsMixin, FoldersMixin, SearchMixin):
    """The storage API. Accounts and domains (storage/sql_accounts.py), folders
    (storage/sql_folders.py) and SEARCH/SORT with the search indexes (storage/sql_search.py) are
    mixed in from their own modules; messages (reading, writing, blobs) are here."""

    def __init__(
        self,
        url: str,
        *,
        blob_dir: Path,
        inline_blob_limit: int = 256 * 1024,
        max_batch: int = 256,
        fold_diacritics: bool = True,
        index_quiet_s: float = _INDEX_QUIET_S,
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
        )
        self._hot = HotPath(self._sqlite)
        self._fill_lock = threading.Lock()
        self._closing = threading.Event()
        self._indexer: threading.Thread | None = None
        if self._sqlite:
            self._indexer = threading.Thread(target=self._index_loop, name="store-indexer", daemon=True)
            self._indexer.start()

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        self._closing.set()
        if self._indexer is not None:
            self._indexer.join(timeout=10)
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

    # -- for extension modules inside storage/ (outbound queue, organisation, …) -----------------
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

    # -- reading messages -----------------------------------------------------------------------
    def open_view(self, folder_id: int, *, claim_recent: bool) -> api.FolderView:
        with self._reading() as conn:
            folder = self._folder_by_id(conn, folder_id)
            floor = conn.scalar(select(m.Folder.recent_floor).where(m.Folder.id == folder_id))
            # One pass over the folder on the DB-API cursor of this transaction (a result object
            # per row and two more scans for the unseen figures cost SELECT most of its time).
            cur = conn.connection.cursor()
            try:
                sql = "SELECT uid, flags FROM messages WHERE folder_id = ? ORDER BY uid"
                cur.execute(sql if self._sqlite else sql.replace("?", "%s"), (folder_id,))
                rows = cur.fetchall()
            finally:
                cur.close()
        uids = [uid for uid, _ in rows]
        unseen_uids = [uid for uid, flags in rows if not flags & SEEN]
        unseen, first_unseen = len(unseen_uids), (unseen_uids[0] if unseen_uids else None)
        recent = frozenset(u for u in uids if u >= floor) if claim_recent else frozenset()
        if claim_recent and recent:
            top = max(recent) + 1

            def job(conn: Connection, _changes: list) -> None:
                conn.execute(
                    update(m.Folder).where(m.Folder.id == folder_id, m.Folder.recent_floor < top).values(recent_floor=top)
                )

            self._writer.run(job)
        return api.FolderView(folder, uids, recent, unseen, first_unseen)

    _MSG_COLUMNS = (
        m.Message.uid,
        m.Message.modseq,
        m.Message.flags,
        m.Message.keywords,
        m.Message.internaldate,
        m.Message.size,
        m.Message.blob_sha,
    )

    def _select_messages(self, fields: frozenset[str]):
        columns = list(self._MSG_COLUMNS)
        if "envelope" in fields:
            columns.append(m.BlobMeta.envelope)
        if "structure" in fields:
            columns.append(m.BlobMeta.structure)
        stmt = select(*columns)
        if "envelope" in fields or "structure" in fields:
            stmt = stmt.join(m.BlobMeta, m.BlobMeta.sha256 == m.Message.blob_sha)
        return stmt

    @staticmethod
    def _info(row, fields: frozenset[str]) -> api.MessageInfo:
        return api.MessageInfo(
            uid=row.uid,
            modseq=row.modseq,
            flags=join_flags(row.flags, row.keywords),
            internaldate=_from_db(row.internaldate),
            size=row.size,
            blob=row.blob_sha,
            envelope=orjson.loads(row.envelope) if "envelope" in fields else None,
            structure=orjson.loads(row.structure) if "structure" in fields else None,
        )

    def fetch(self, folder_id: int, uids: Iterable[int], *, fields: frozenset[str] = frozenset()) -> list[api.MessageInfo]:
        result: list[api.MessageInfo] = []
        for batch in self.iter_fetch(folder_id, sorted(set(uids)), fields=fields):
            result.extend(batch)
        return result

    def iter_fetch(
        self, folder_id: int, uids: Sequence[int], *, fields: frozenset[str] = frozenset(), batch: int = 500
    ) -> Iterator[list[api.MessageInfo]]:
        """Plain SQL on a pooled DB-API connection: FETCH over a whole folder spends its time in
        SQLite, not in building statements and result objects (about 10x less CPU per row)."""
        ordered = sorted(set(uids))
        want_envelope, want_structure = "envelope" in fields, "structure" in fields
        columns = "m.uid, m.modseq, m.flags, m.keywords, m.internaldate, m.size, m.blob_sha"
        columns += ", b.envelope" if want_envelope else ", NULL"
        columns += ", b.structure" if want_structure else ", NULL"
        join = " JOIN blob_meta b ON b.sha256 = m.blob_sha" if want_envelope or want_structure else ""
        sql = f"SELECT {columns} FROM messages m{join} WHERE m.folder_id = ? AND m.uid BETWEEN ? AND ? ORDER BY m.uid"
        if not self._sqlite:
            sql = sql.replace("?", "%s")
        for part in _chunks(ordered, batch):
            wanted = set(part)
            with self._raw_read() as cur:
                cur.execute(sql, (folder_id, part[0], part[-1]))
                rows = cur.fetchall()
            found = [
                api.MessageInfo(
                    uid=uid, modseq=modseq, flags=_flags(mask, keywords), internaldate=self._when(when), size=size,
                    blob=sha,
                    envelope=_cached_json(sha, "e", envelope) if want_envelope else None,
                    structure=_cached_json(sha, "s", structure) if want_structure else None,
                )
                for uid, modseq, mask, keywords, when, size, sha, envelope, structure in rows
                if uid in wanted
            ]
            if found:
                yield found

    _ROWS_SQL = (
        "SELECT m.uid, m.modseq, m.flags, m.keywords, {date}, m.size, {blob}, {cache} "
        "FROM messages m{join} WHERE m.folder_id = ? AND {where} ORDER BY m.uid"
    )

    def fetch_rows(
        self, folder_id: int, uids: Sequence[int], *, date: bool = False, rendered: int | None = None,
        kinds: Collection[str] = api.RENDERED_KINDS, batch: int = 2000, blob: bool = True,
    ) -> Iterator[list[tuple]]:
        """One query per batch on a raw cursor; the renderings come from fetch_cache, a narrow
        table joined on the message's integer key (see migration 0008). Only the kinds asked
        for are read: a bytes object per column and row is most of what the join costs."""
        ordered = sorted(set(uids))
        if rendered is None:
            cache, join, lead = "NULL, NULL, NULL", "", ()
        else:
            cache = ", ".join(f"c.{k}" if k in kinds else "NULL" for k in api.RENDERED_KINDS)
            join = " LEFT JOIN fetch_cache c ON c.message_id = m.id AND c.sha256 = m.blob_sha AND c.version = ?"
            lead = (rendered,)
        if blob:
            ident = "m.blob_sha, m.id"
        elif rendered is None or not kinds:
            ident = "NULL, NULL"
        else:
            missing = " OR ".join(f"c.{k} IS NULL" for k in api.RENDERED_KINDS if k in kinds)
            ident = f"CASE WHEN {missing} THEN m.blob_sha END, CASE WHEN {missing} THEN m.id END"
        base = self._ROWS_SQL.format(
            date="m.internaldate" if date else "NULL", blob=ident, cache=cache, join=join, where="{where}"
        )
        F, W = _flags, self._when
        for part in _chunks(ordered, batch):
            dense = part[-1] - part[0] + 1 == len(part)
            if dense or part[-1] - part[0] + 1 <= 4 * len(part):
                sql, args = base.format(where="m.uid BETWEEN ? AND ?"), (*lead, folder_id, part[0], part[-1])
            else:  # a sparse set (100 bodies picked over the folder): no scan of what lies between
                sql, args = base.format(where=f"m.uid IN ({', '.join('?' * len(part))})"), (*lead, folder_id, *part)
            if not self._sqlite:
                sql = sql.replace("?", "%s")
            with self._raw_read() as cur:
                cur.execute(sql, args)
                rows = cur.fetchall()
            if not dense:
                wanted = set(part)
                rows = [r for r in rows if r[0] in wanted]
            if date:
                rows = [(u, ms, F(fl, kw), W(d), sz, sha, ref, e, b, bs) for u, ms, fl, kw, d, sz, sha, ref, e, b, bs in rows]
            else:
                rows = [(u, ms, F(fl, kw), None, sz, sha, ref, e, b, bs) for u, ms, fl, kw, _d, sz, sha, ref, e, b, bs in rows]
            if rows:
                yield rows

    def body_meta(self, shas: Sequence[str], fields: frozenset[str]) -> dict[str, tuple[dict | None, dict | None]]:
        wanted = list(dict.fromkeys(shas))
        mark = "?" if self._sqlite else "%s"
        env = "envelope" if "envelope" in fields else "NULL"
        struct = "structure" if "structure" in fields else "NULL"
        result: dict[str, tuple[dict | None, dict | None]] = {}
        for start in range(0, len(wanted), CHUNK):
            part = wanted[start : start + CHUNK]
            with self._raw_read() as cur:
                cur.execute(f"SELECT sha256, {env}, {struct} FROM blob_meta WHERE sha256 IN ({', '.join([mark] * len(part))})", part)
                rows = cur.fetchall()
            for sha, envelope, structure in rows:
                result[sha] = (_cached_json(sha, "e", envelope), _cached_json(sha, "s", structure))
        return result

    def unrendered(self, version: int, after: int, limit: int = 500) -> tuple[list[tuple[int, str, dict | None, dict | None]], int]:
        """The highest key is read first and bounds the scan: a message committed meanwhile is
        left for the next call, never skipped by it."""
        mark = "?" if self._sqlite else "%s"
        with self._raw_read() as cur:
            cur.execute("SELECT max(id) FROM messages")
            top = cur.fetchone()[0] or 0
            if top <= after:
                return [], after
            cur.execute(
                "SELECT m.id, m.blob_sha, b.envelope, b.structure FROM messages m "
                "JOIN blob_meta b ON b.sha256 = m.blob_sha "
                f"LEFT JOIN fetch_cache c ON c.message_id = m.id AND c.sha256 = m.blob_sha AND c.version = {mark} "
                f"WHERE m.id > {mark} AND m.id <= {mark} AND (c.envelope IS NULL OR c.body IS NULL OR c.bodystructure IS NULL) "
                f"ORDER BY m.id LIMIT {mark}",
                (version, after, top, limit),
            )
            rows = cur.fetchall()
        parsed: dict[str, tuple] = {}  # a fan-out's copies share one body: parsed once
        found = []
        for ref, sha, env, struct in rows:
            meta = parsed.get(sha)
            if meta is None:
                meta = parsed[sha] = (orjson.loads(env) if env else None, orjson.loads(struct) if struct else None)
            found.append((ref, sha, *meta))
        return found, (rows[-1][0] if len(rows) == limit else top)

    _PUT_RENDERED = (
        "INSERT INTO fetch_cache (message_id, sha256, version, envelope, body, bodystructure) "
        "SELECT id, blob_sha, ?, ?, ?, ? FROM messages WHERE id = ? AND blob_sha = ? "
        "ON CONFLICT (message_id) DO UPDATE SET "
        + ", ".join(
            f"{c} = CASE WHEN fetch_cache.sha256 = excluded.sha256 AND fetch_cache.version = excluded.version "
            f"THEN COALESCE(excluded.{c}, fetch_cache.{c}) ELSE excluded.{c} END"
            for c in ("envelope", "body", "bodystructure")
        )
        + ", sha256 = excluded.sha256, version = excluded.version"
    )

    def put_rendered(
        self, version: int, items: Sequence[tuple[int, str, bytes | None, bytes | None, bytes | None]], *, wait: bool = False
    ) -> None:
        """Queued for a background thread (a FETCH never waits for a cache write) unless ``wait``;
        rows beyond _KEEP_PENDING waiting are dropped — the next FETCH renders them again."""
        if wait:
            self._write_rendered(version, items)
        else:
            self._keeper.offer(version, list(items))

    @functools.cached_property
    def _keeper(self) -> "_Keeper":
        return _Keeper(self)

    def _write_rendered(self, version: int, items: Sequence[tuple]) -> None:
        """In jobs of a few hundred rows, each waiting for its commit, so deliveries waiting for
        the writer are never held behind one long cache job."""
        sql = self._PUT_RENDERED if self._sqlite else self._PUT_RENDERED.replace("?", "%s")
        for start in range(0, len(items), CHUNK):
            params = [(version, env, body, bs, ref, sha) for ref, sha, env, body, bs in items[start : start + CHUNK]]

            def job(conn: Connection, _changes: list, params=params) -> None:
                cur = conn.connection.cursor()
                try:
                    cur.executemany(sql, params)
                finally:
                    cur.close()

            self._writer.run(job)

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

    def open_blob(self, sha256: str) -> BinaryIO:
        sql = "SELECT data FROM blobs WHERE sha256 = ?" if self._sqlite else "SELECT data FROM blobs WHERE sha256 = %s"
        with self._raw_read() as cur:
            cur.execute(sql, (sha256,))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"blob {sha256}")
        if row[0] is not None:
            return io.BytesIO(bytes(row[0]))
        return self._blobs.open(sha256)

    def read_blob(self, sha256: str, offset: int = 0, length: int | None = None) -> bytes:
        with self.open_blob(sha256) as f:
            f.seek(offset)
            return f.read() if length is None else f.read(length)

    def read_blobs(self, shas: Sequence[str]) -> dict[str, bytes]:
        """Whole bodies of several blobs in one query (FETCH of many bodies)."""
        wanted = list(dict.fromkeys(shas))
        result: dict[str, bytes] = {}
        mark = "?" if self._sqlite else "%s"
        for start in range(0, len(wanted), CHUNK):
            part = wanted[start : start + CHUNK]
            with self._raw_read() as cur:
                cur.execute(f"SELECT sha256, data FROM blobs WHERE sha256 IN ({', '.join([mark] * len(part))})", part)
                rows = cur.fetchall()
            for sha, data in rows:
                if data is not None:
                    result[sha] = bytes(data)
                else:
                    with self._blobs.open(sha) as f:
                        result[sha] = f.read()
        missing = [sha for sha in wanted if sha not in result]
        if missing:
            raise NotFound(f"blob {missing[0]}")
        return result

    def read_heads(self, lengths: Mapping[str, int]) -> dict[str, bytes]:
        wanted = list(lengths)
        result: dict[str, bytes] = {}
        mark = "?" if self._sqlite else "%s"
        cut = "substr(data, 1, ?)" if self._sqlite else "substring(data from 1 for %s)"
        for start in range(0, len(wanted), CHUNK):
            part = wanted[start : start + CHUNK]
            longest = max(lengths[sha] for sha in part)
            with self._raw_read() as cur:
                cur.execute(
                    f"SELECT sha256, {cut}, data IS NULL FROM blobs WHERE sha256 IN ({', '.join([mark] * len(part))})",
                    [longest, *part],
                )
                rows = cur.fetchall()
            for sha, head, on_disk in rows:
                if on_disk:
                    with self._blobs.open(sha) as f:
                        result[sha] = f.read(lengths[sha])
                else:
                    result[sha] = bytes(head[: lengths[sha]])
        missing = [sha for sha in wanted if sha not in result]
        if missing:
            raise NotFound(f"blob {missing[0]}")
        return result

    def changes(self, folder_id: int, since_modseq: int, known_uidnext: int) -> api.Changes:
        stmt = self._select_messages(frozenset())
        with self._reading() as conn:
            folder = self._folder_by_id(conn, folder_id)
            new = conn.execute(
                stmt.where(m.Message.folder_id == folder_id, m.Message.uid >= known_uidnext).order_by(m.Message.uid)
            ).all()
            updated = conn.execute(
                stmt.where(
                    m.Message.folder_id == folder_id, m.Message.uid < known_uidnext, m.Message.modseq > since_modseq
                ).order_by(m.Message.uid)
            ).all()
            expunged = list(
                conn.scalars(
                    select(m.Expunged.uid)
                    .where(m.Expunged.folder_id == folder_id, m.Expunged.modseq > since_modseq, m.Expunged.uid < known_uidnext)
                    .order_by(m.Expunged.uid)
                )
            )
        empty = frozenset()
        return api.Changes(
            highestmodseq=folder.highestmodseq,
            uidnext=folder.uidnext,
            new=[self._info(r, empty) for r in new],
            updated=[self._info(r, empty) for r in updated],
            expunged=expunged,
        )

    # -- writing messages -----------------------------------------------------------------------
    def parse_message(self, source: bytes | BinaryIO, *, measure: bool = False, search_text: bool | None = None) -> dict:
        # SQLite: the search text of the body and of all header fields is left to the indexer
        # (fill_bodies, sql_search.py).
        if search_text is None:
            search_text = not self._sqlite
        return _parse(source, search_text=search_text, max_depth=self._mime_max_depth, measure=measure)

    def put_blob(self, source: bytes | BinaryIO, *, prefix: bytes = b"", parsed: dict | None = None) -> api.BlobRef:
        meta = None if parsed is None else self._reuse(parsed, source, prefix)
        sha, size, inline, path = self._blobs.write(source, prefix)
        if meta is None and inline is not None:
            meta = self.parse_message(inline)
        elif meta is None:
            with open(path, "rb") as f:
                meta = self.parse_message(f)
        return api.BlobRef(
            sha256=sha, size=size, inline=inline, path=str(path) if path else None, meta=meta,
            index=index_columns(meta, self.fold),
        )

    def _reuse(self, parsed: dict, source: bytes | BinaryIO, prefix: bytes) -> dict | None:
        """``parsed`` (of ``source`` from offset 0) turned into the metadata of ``prefix`` + the
        source from where it now stands: at 0, or just after its header section (replaced by one
        in ``prefix``); None when the stored message must be parsed again. Leaves ``source``
        where it was."""
        body_start = parsed["structure"]["body_start"]
        if isinstance(source, (bytes, bytearray, memoryview)):
            head = bytes(source[:body_start])
        elif (at := source.tell()) == body_start:
            head = b""
        elif at == 0:
            head = source.read(body_start)
            source.seek(0)
        else:
            return None
        return with_head(parsed, prefix, head, search_text=not self._sqlite)

    def _ensure_blob(self, conn: Connection, blob: api.BlobRef) -> None:
        if conn.scalar(select(m.Blob.size).where(m.Blob.sha256 == blob.sha256)) is not None:
            return
        conn.execute(insert(m.Blob).values(sha256=blob.sha256, size=blob.size, data=blob.inline, created_at=_utcnow()))
        columns = blob.index if blob.index is not None else index_columns(blob.meta, self.fold)
        conn.execute(insert(m.BlobMeta).values(sha256=blob.sha256, **columns))

    def _reserve(self, conn: Connection, folder_id: int, count: int) -> tuple[int, int]:
        """Take ``count`` UIDs and one new MODSEQ; returns (first uid, modseq)."""
        row = conn.execute(
            update(m.Folder)
            .where(m.Folder.id == folder_id)
            .values(uidnext=m.Folder.uidnext + count, highestmodseq=m.Folder.highestmodseq + 1)
            .returning(m.Folder.uidnext, m.Folder.highestmodseq)
        ).one()
        return row.uidnext - count, row.highestmodseq

    def _bump(self, conn: Connection, folder_id: int) -> int:
        return conn.execute(
            update(m.Folder)
            .where(m.Folder.id == folder_id)
            .values(highestmodseq=m.Folder.highestmodseq + 1)
            .returning(m.Folder.highestmodseq)
        ).scalar_one()

    def _check_quota(self, conn: Connection, account_id: int, size: int, limit: int | None) -> None:
        stmt = select(m.Account.used_bytes).where(m.Account.id == account_id)
        if not self._sqlite:
            stmt = stmt.with_for_update()
        used = conn.scalar(stmt)
        if used is None:
            raise NotFound(f"account {account_id}")
        if limit is not None and used + size > limit:
            raise NoQuota(f"account {account_id}: {used} + {size} > {limit}")

    def _add_message(
        self, conn: Connection, folder: api.Folder, blob_sha: str, size: int, mask: int, keywords: str, when: _dt.datetime
    ) -> tuple[int, int]:
        uid, modseq = self._reserve(conn, folder.id, 1)
        conn.execute(
            insert(m.Message).values(
                folder_id=folder.id, uid=uid, modseq=modseq, blob_sha=blob_sha, size=size,
                internaldate=when, flags=mask, keywords=keywords,
            )
        )
        self._charge(conn, folder.account_id, size, 1)
        return uid, modseq

    def blob_on_disk(self, size: int) -> bool:
        return self._blobs.inline_limit is not None and size > self._blobs.inline_limit

    def deliver(
        self, blob: api.BlobRef, targets: Sequence[api.DeliveryTarget], *, internaldate: _dt.datetime | None = None
    ) -> list[api.DeliveryOutcome]:
        return self.deliver_soon(blob, targets, internaldate=internaldate).result()

    def deliver_soon(
        self, blob: api.BlobRef, targets: Sequence[api.DeliveryTarget], *, internaldate: _dt.datetime | None = None
    ) -> concurrent.futures.Future:
        when = _to_db(internaldate)
        prepared = [(t, *split_flags(t.flags)) for t in targets]

        columns = blob.index if blob.index is not None else index_columns(blob.meta, self.fold)
        prepared = [(replace(t, folder=_canonical(t.folder)), mask, pack_keywords(kw)) for t, mask, kw in prepared]

        arrived = _from_db(when)  # for FolderChange.new: what a reader of the row would get

        def job(conn: Connection, changes: list) -> list[api.DeliveryOutcome]:
            cur = conn.connection.cursor()
            try:
                self._hot.ensure_blob(cur, blob, columns, _utcnow())
                if len(prepared) > 1 and len({t.account_id for t, _m, _k in prepared}) == len(prepared):
                    return self._deliver_many(cur, blob, prepared, when, arrived, changes)
                outcomes = []
                for target, mask, keywords in prepared:
                    try:
                        account_id, folder_id, uid, modseq = self._hot.deliver_one(cur, blob, target, mask, keywords, when)
                    except (NotFound, NoQuota) as exc:
                        outcomes.append(api.DeliveryOutcome(target.account_id, False, error=str(exc.kind)))
                        continue
                    changes.append(_delivered(account_id, folder_id, uid, modseq, mask, keywords, blob, arrived))
                    outcomes.append(api.DeliveryOutcome(account_id, True, folder_id, uid))
                return outcomes
            finally:
                cur.close()

        job.directory, job.size = "delivery", blob.size  # type: ignore[attr-defined]  # for _settle
        return self._writer.submit(job)

    def _deliver_many(self, cur, blob, prepared, when, arrived, changes: list) -> list[api.DeliveryOutcome]:
        """A fan-out (R-BOX-4): every target in a few statements (HotPath.deliver_many)."""
        outcomes = []
        for (target, mask, keywords), got in zip(prepared, self._hot.deliver_many(cur, blob, prepared, when)):
            if isinstance(got, (NotFound, NoQuota)):
                outcomes.append(api.DeliveryOutcome(target.account_id, False, error=str(got.kind)))
                continue
            folder_id, uid, modseq = got
            changes.append(_delivered(target.account_id, folder_id, uid, modseq, mask, keywords, blob, arrived))
            outcomes.append(api.DeliveryOutcome(target.account_id, True, folder_id, uid))
        return outcomes

    def append(
        self,
        folder_id: int,
        blob: api.BlobRef,
        *,
        flags: frozenset[str] = frozenset(),
        internaldate: _dt.datetime | None = None,
        quota_limit: int | None = None,
    ) -> tuple[int, int]:
        mask, keywords = split_flags(flags)
        when = _to_db(internaldate)

        def job(conn: Connection, changes: list) -> tuple[int, int]:
            folder = self._folder_by_id(conn, folder_id)
            self._check_quota(conn, folder.account_id, blob.size, quota_limit)
            self._ensure_blob(conn, blob)
            uid, modseq = self._add_message(conn, folder, blob.sha256, blob.size, mask, pack_keywords(keywords), when)
            changes.append(api.FolderChange(folder.account_id, folder.id, modseq))
            return folder.uidvalidity, uid

        return self._writer.run(job)

    def store_flags(
        self,
        folder_id: int,
        uids: Sequence[int],
        mode: str,
        flags: frozenset[str],
        *,
        unchanged_since: int | None = None,
    ) -> api.StoreResult:
        if mode not in ("set", "add", "remove"):
            raise Invalid(f"unknown store mode {mode}")
        mask, keywords = split_flags(flags)
        ordered = sorted(set(uids))

        def job(conn: Connection, changes: list) -> api.StoreResult:
            folder = self._folder_by_id(conn, folder_id)
            rows = []
            for part in _chunks(ordered):
                rows.extend(
                    conn.execute(
                        select(m.Message.uid, m.Message.flags, m.Message.keywords, m.Message.modseq).where(
                            m.Message.folder_id == folder_id, m.Message.uid.in_(part)
                        )
                    ).all()
                )
            failed = [r.uid for r in rows if unchanged_since is not None and r.modseq > unchanged_since]
            new_values = []
            for row in rows:
                if unchanged_since is not None and row.modseq > unchanged_since:
                    continue
                current = set(row.keywords.split())
                if mode == "set":
                    new_mask, new_kw = mask, set(keywords)
                elif mode == "add":
                    new_mask, new_kw = row.flags | mask, current | keywords
                else:
                    new_mask, new_kw = row.flags & ~mask, current - keywords
                if new_mask != row.flags or new_kw != current:
                    new_values.append((row.uid, new_mask, pack_keywords(new_kw)))
            if not new_values:
                return api.StoreResult([], sorted(failed))
            modseq = self._bump(conn, folder_id)
            conn.execute(
                update(m.Message)
                .where(m.Message.folder_id == folder_id, m.Message.uid == bindparam("b_uid"))
                .values(flags=bindparam("b_flags"), keywords=bindparam("b_kw"), modseq=modseq),
                [{"b_uid": u, "b_flags": f, "b_kw": k} for u, f, k in new_values],
            )
            changes.append(api.FolderChange(folder.account_id, folder_id, modseq))
            updated = [api.FlagUpdate(u, modseq, join_flags(f, k)) for u, f, k in new_values]
            return api.StoreResult(updated, sorted(failed))

        return self._writer.run(job)

    def expunge(self, folder_id: int, uids: Sequence[int] | None = None) -> list[int]:
        wanted = None if uids is None else set(uids)

        def job(conn: Connection, changes: list) -> list[int]:
            folder = self._folder_by_id(conn, folder_id)
            rows = conn.execute(
                select(m.Message.uid, m.Message.size).where(
                    m.Message.folder_id == folder_id, m.Message.flags.op("&")(DELETED) != 0
                )
            ).all()
            if wanted is not None:
                rows = [r for r in rows if r.uid in wanted]
            if not rows:
                return []
            modseq = self._bump(conn, folder_id)
            self._remove_messages(conn, folder, rows, modseq)
            changes.append(api.FolderChange(folder.account_id, folder_id, modseq))
            return sorted(r.uid for r in rows)

        return self._writer.run(job)

    def copy(
        self,
        src_folder_id: int,
        uids: Sequence[int],
        dst_folder_id: int,
        *,
        move: bool = False,
        quota_limit: int | None = None,
    ) -> api.CopyResult:
        ordered = sorted(set(uids))

        def job(conn: Connection, changes: list) -> api.CopyResult:
            src = self._folder_by_id(conn, src_folder_id)
            dst = self._folder_by_id(conn, dst_folder_id)
            rows = []
            for part in _chunks(ordered):
                rows.extend(
                    conn.execute(
                        select(m.Message).where(m.Message.folder_id == src.id, m.Message.uid.in_(part)).order_by(m.Message.uid)
                    ).all()
                )
            if not rows:
                return api.CopyResult(dst.uidvalidity, [])
            size = sum(r.size for r in rows)
            same_account = src.account_id == dst.account_id
            if not (move and same_account):
                self._check_quota(conn, dst.account_id, size, quota_limit)
            first, modseq = self._reserve(conn, dst.id, len(rows))
            mapping = [(r.uid, first + i) for i, r in enumerate(rows)]
            conn.execute(
                insert(m.Message),
                [
                    {
                        "folder_id": dst.id, "uid": new_uid, "modseq": modseq, "blob_sha": r.blob_sha, "size": r.size,
                        "internaldate": r.internaldate, "flags": r.flags, "keywords": r.keywords,
                    }
                    for r, (_old, new_uid) in zip(rows, mapping)
                ],
            )
            self._charge(conn, dst.account_id, size, len(rows))
            changes.append(api.FolderChange(dst.account_id, dst.id, modseq))
            if move:
                src_modseq = self._bump(conn, src.id)
                self._remove_messages(conn, src, rows, src_modseq)
                changes.append(api.FolderChange(src.account_id, src.id, src_modseq))
            return api.CopyResult(dst.uidvalidity, mapping)

        return self._writer.run(job)


def _delivered(account_id, folder_id, uid, modseq, mask, keywords, blob, arrived) -> api.FolderChange:
    """What a delivery changed, in full (FolderChange.since/new): ``deliver_one`` took one UID
    and one MODSEQ, so the folder went from ``modseq - 1`` to ``modseq`` with this message only."""
    info = api.MessageInfo(uid, modseq, _flags(mask, keywords), arrived, blob.size, blob.sha256)
    return api.FolderChange(account_id, folder_id, modseq, modseq - 1, (info,))


@functools.lru_cache(maxsize=4096)
def _flags(mask: int, keywords: str) -> frozenset[str]:
    return join_flags(mask, keywords)


_KEEP_PENDING = 20_000


class _Keeper:
    """The background writer of FETCH renderings: one thread per store while there is work,
    at most _KEEP_PENDING rows waiting (what does not fit is dropped)."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = 0
        self._thread: threading.Thread | None = None

    def offer(self, version: int, items: list) -> bool:
        with self._lock:
            if self._store._closing.is_set() or self._pending + len(items) > _KEEP_PENDING:
                return False
            self._pending += len(items)
            self._queue.put((version, items))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="store-fetch-cache", daemon=True)
                self._thread.start()
        return True

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._pending == 0 or self._store._closing.is_set():
                    self._thread = None
                    return
            version, items = self._queue.get()
            try:
                self._store._write_rendered(version, items)
            except Exception:  # a cache: never worth more than a log line
                log.warning("fetch renderings not kept", exc_info=True)
            finally:
                with self._lock:
                    self._pending -= len(items)


_JSON_CACHE: dict[tuple[str, str], dict] = {}
_JSON_CACHE_LOCK = threading.Lock()
#: Small on purpose: parsed dicts cost kilobytes each, and FETCH over whole folders reads the
#: renderings kept in fetch_cache instead (100,000 entries held ~70 MB per 10,000 messages).
_JSON_CACHE_MAX = 2_000


def _cached_json(sha: str, kind: str, text: str | None) -> dict | None:
    """Parsed envelope/structure by body: a folder FETCHed again (or a fan-out's copies) parses
    each body's JSON once per process. Callers must treat the dicts as read-only."""
    if text is None:
        return None
    key = (sha, kind)
    value = _JSON_CACHE.get(key)
    if value is None:
        value = orjson.loads(text)
        with _JSON_CACHE_LOCK:
            if len(_JSON_CACHE) >= _JSON_CACHE_MAX:
                _JSON_CACHE.clear()
            _JSON_CACHE[key] = value
    return value
