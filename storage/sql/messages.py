"""The messages role (storage.api.Messages): reading (SELECT views, FETCH rows, bodies, the
change log), the FETCH renderings cache, and writing (delivery, APPEND, flags, EXPUNGE, COPY and
MOVE, every message added through storage/sql/place.py).

Longer than the other role modules: reading and writing share the row formats and caches here
(``_flags``, ``_cached_json``), and splitting them would take a mixin or a second object per role.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import datetime as _dt
import functools
import io
import logging
import queue
import threading
from array import array
from dataclasses import replace
from typing import BinaryIO, Collection, Iterable, Iterator, Mapping, Sequence

import orjson
from sqlalchemy import Connection, bindparam, select, update

from storage import api, codec, models as m
from storage.errors import Invalid, NoQuota, NotFound
from storage.flags import join as join_flags, mailbox_keywords, pack_keywords, spelled, split as split_flags
from storage.indexing import index_columns
from storage.mime.reuse import with_head
from storage.sql.place import Placement
from storage.sql.role import Role
from storage.sql.snapshots import FolderSnapshots, Snapshot
from storage.sqlrows import CHUNK, DELETED, SEEN, _canonical, _chunks, _from_db, _to_db, _utcnow

log = logging.getLogger("storage.sqlstore")


class SqlMessages(Role):
    """See storage.api.Messages."""

    # -- reading messages -----------------------------------------------------------------------
    def __init__(self, core) -> None:
        super().__init__(core)
        self._snapshots = FolderSnapshots()

    def open_view(self, folder_id: int, *, claim_recent: bool) -> api.FolderView:
        with self._reading() as conn:
            row = conn.execute(select(m.Folder).where(m.Folder.id == folder_id)).first()
            if row is None:
                raise NotFound(f"folder {folder_id}")
            folder, floor = self._folder(row), row.recent_floor
            key = (folder.uidvalidity, folder.highestmodseq, folder.uidnext)
            snap = self._snapshots.get(folder_id, key)
            if snap is None:
                snap = self._snapshot(conn, folder_id, key)
                self._snapshots.put(folder_id, snap)
        uids = array("q", snap.uids)  # the caller's own copy (one memcpy; a list would cost 10x)
        # \Recent (RFC 3501 §2.3.2): the messages at or above the floor. EXAMINE shows them and
        # leaves them for the next SELECT; SELECT claims them by raising the floor, in the writer
        # so that two sessions never both take a message (the floor read above may be stale).
        if claim_recent and uids and uids[-1] >= floor:
            top = uids[-1] + 1

            def job(conn: Connection, _changes: list) -> int:
                now = conn.scalar(select(m.Folder.recent_floor).where(m.Folder.id == folder_id))
                if now < top:
                    conn.execute(update(m.Folder).where(m.Folder.id == folder_id).values(recent_floor=top))
                return now

            floor = self._writer.run(job)
        recent = frozenset(uids[bisect.bisect_left(uids, floor) :])
        return api.FolderView(folder, uids, recent, snap.unseen, snap.first_unseen, snap.keywords)

    def _snapshot(self, conn: Connection, folder_id: int, key: tuple[int, int, int]) -> Snapshot:
        """One pass over the folder on the DB-API cursor of this transaction (a result object
        per row and two more scans for the unseen figures cost SELECT most of its time)."""
        cur = conn.connection.cursor()
        try:
            sql = "SELECT uid, flags FROM messages WHERE folder_id = ? ORDER BY uid"
            cur.execute(sql if self._sqlite else sql.replace("?", "%s"), (folder_id,))
            rows = cur.fetchall()
        finally:
            cur.close()
        unseen_uids = [uid for uid, flags in rows if not flags & SEEN]
        return Snapshot(
            key, array("q", [uid for uid, _ in rows]), len(unseen_uids), unseen_uids[0] if unseen_uids else None,
            tuple(self._keywords_in(conn, folder_id)),
        )

    def claim_recent(self, claims: Sequence[tuple[int, int]]) -> list[int]:
        if not claims:
            return []

        def job(conn: Connection, _changes: list) -> list[int]:
            out = []
            for folder_id, below in claims:
                now = conn.scalar(select(m.Folder.recent_floor).where(m.Folder.id == folder_id))
                if now is None:  # the folder is gone
                    out.append(below)
                    continue
                if now < below:
                    conn.execute(update(m.Folder).where(m.Folder.id == folder_id).values(recent_floor=below))
                out.append(min(now, below))
            return out

        return self._writer.run(job)

    @staticmethod
    def _keywords_in(conn: Connection, folder_id: int) -> list[str]:
        """The keywords the folder's messages carry: the distinct keyword columns, read from the
        index on (folder_id, keywords) (messages without keywords are skipped by the range)."""
        rows = conn.execute(
            select(m.Message.keywords).where(m.Message.folder_id == folder_id, m.Message.keywords > "").distinct()
        ).scalars()
        return mailbox_keywords(rows)

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

    def save_dates(self, folder_id: int, uids: Sequence[int]) -> dict[int, _dt.datetime | None]:
        wanted = sorted(set(uids))
        if not wanted:
            return {}
        sql = "SELECT uid, savedate FROM messages WHERE folder_id = ? AND uid BETWEEN ? AND ?"
        if not self._sqlite:
            sql = sql.replace("?", "%s")
        with self._raw_read() as cur:
            cur.execute(sql, (folder_id, wanted[0], wanted[-1]))
            rows = cur.fetchall()
        keep = set(wanted)
        return {uid: None if when is None else self._when(when) for uid, when in rows if uid in keep}

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
        # Flags alone (``UID FETCH 1:* (FLAGS)``, a client's resync of a large folder): no
        # column that is always NULL, each of which cost 5% of the query's time in the driver.
        narrow = not date and rendered is None and not blob
        if narrow:
            base = "SELECT m.uid, m.modseq, m.flags, m.keywords, m.size FROM messages m WHERE m.folder_id = ? AND {where} ORDER BY m.uid"
        # One kept rendering (``FETCH 1:* (BODYSTRUCTURE)``): the same, with its column alone.
        slot = api.RENDERED_KINDS.index(next(iter(kinds))) if not date and not blob and rendered is not None and len(kinds) == 1 else None
        if slot is not None:
            pad, tail = (None,) * slot, (None,) * (len(api.RENDERED_KINDS) - 1 - slot)
            base = self._ROWS_SQL.replace("{date}, ", "").format(
                blob=ident, cache=f"c.{api.RENDERED_KINDS[slot]}", join=join, where="{where}"
            )
        F, W = _FlagSets(), self._when  # F[mask, keywords]: one frozenset per distinct set
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
            if narrow:
                rows = [(u, ms, F[fl, kw], None, sz, None, None, None, None, None) for u, ms, fl, kw, sz in rows]
            elif slot is not None:
                rows = [(u, ms, F[fl, kw], None, sz, sha, ref, *pad, c, *tail) for u, ms, fl, kw, sz, sha, ref, c in rows]
            elif date:
                rows = [(u, ms, F[fl, kw], W(d), sz, sha, ref, e, b, bs) for u, ms, fl, kw, d, sz, sha, ref, e, b, bs in rows]
            else:
                rows = [(u, ms, F[fl, kw], None, sz, sha, ref, e, b, bs) for u, ms, fl, kw, _d, sz, sha, ref, e, b, bs in rows]
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

    def open_blob(self, sha256: str) -> BinaryIO:
        sql = "SELECT data, codec FROM blobs WHERE sha256 = ?"
        with self._raw_read() as cur:
            cur.execute(sql if self._sqlite else sql.replace("?", "%s"), (sha256,))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"blob {sha256}")
        if row[0] is not None:
            return io.BytesIO(codec.unpack(row[0], row[1]))
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
                cur.execute(f"SELECT sha256, data, codec FROM blobs WHERE sha256 IN ({', '.join([mark] * len(part))})", part)
                rows = cur.fetchall()
            for sha, data, how in rows:
                if data is not None:
                    result[sha] = codec.unpack(data, how)
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
        # Cut by the database: the header section is kept uncompressed ahead of a compressed
        # rest (storage/codec.py); a head reaching past it is read whole and decompressed.
        cut = "substr(data, 1, ?)" if self._sqlite else "substring(data from 1 for %s)"
        for start in range(0, len(wanted), CHUNK):
            part = wanted[start : start + CHUNK]
            longest = max(lengths[sha] for sha in part)
            with self._raw_read() as cur:
                cur.execute(
                    f"SELECT sha256, {cut}, data IS NULL, codec FROM blobs WHERE sha256 IN ({', '.join([mark] * len(part))})",
                    [longest, *part],
                )
                rows = cur.fetchall()
            for sha, head, on_disk, how in rows:
                if on_disk:
                    with self._blobs.open(sha) as f:
                        result[sha] = f.read(lengths[sha])
                elif how is None or (codec.raw_prefix(how) or 0) >= lengths[sha]:
                    result[sha] = bytes(head[: lengths[sha]])
                else:
                    result[sha] = self.read_blob(sha, 0, lengths[sha])
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
    def put_blob(self, source: bytes | BinaryIO, *, prefix: bytes = b"", parsed: dict | None = None) -> api.BlobRef:
        meta = None if parsed is None else self._reuse(parsed, source, prefix)
        sha, size, inline, path = self._blobs.write(source, prefix)
        if meta is None and inline is not None:
            meta = self.parse_message(inline)
        elif meta is None:
            with open(path, "rb") as f:
                meta = self.parse_message(f)
        stored, how = codec.pack(inline, meta["structure"].get("body_start", 0)) if inline is not None else (None, None)
        return api.BlobRef(
            sha256=sha, size=size, inline=inline, path=str(path) if path else None, meta=meta,
            index=index_columns(meta, self.fold), stored=stored, codec=how,
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

        placements = [
            Placement(t.account_id, t.folder, ((blob.sha256, blob.size, when, mask, keywords),), t.quota_limit, receiving=True)
            for t, mask, keywords in prepared
        ]

        def job(conn: Connection, changes: list) -> list[api.DeliveryOutcome]:
            cur = conn.connection.cursor()
            try:
                self._placer.ensure_blob(cur, blob, columns, _utcnow())
                placed = self._placer.place(cur, placements)
            finally:
                cur.close()
            outcomes = []
            for (target, mask, keywords), got in zip(prepared, placed):
                if isinstance(got, (NotFound, NoQuota)):
                    outcomes.append(api.DeliveryOutcome(target.account_id, False, error=str(got.kind)))
                    continue
                folder_id, uid, modseq = got
                changes.append(_delivered(target.account_id, folder_id, uid, modseq, mask, keywords, blob, arrived))
                outcomes.append(api.DeliveryOutcome(target.account_id, True, folder_id, uid))
            return outcomes

        job.directory, job.size = "delivery", blob.size  # type: ignore[attr-defined]  # for _settle
        job.accounts = [t.account_id for t in targets]  # type: ignore[attr-defined]  # for lock_accounts
        return self._writer.submit(job)

    def append(
        self,
        folder_id: int,
        blob: api.BlobRef,
        *,
        flags: frozenset[str] = frozenset(),
        internaldate: _dt.datetime | None = None,
        quota_limit: int | None = None,
    ) -> tuple[int, int]:
        uidvalidity, (uid,) = self.append_many(folder_id, [api.NewMessage(blob, flags, internaldate)], quota_limit=quota_limit)
        return uidvalidity, uid

    def append_many(
        self, folder_id: int, messages: Sequence[api.NewMessage], *, quota_limit: int | None = None
    ) -> tuple[int, list[int]]:
        prepared = [(m.blob, *split_flags(m.flags), _to_db(m.internaldate)) for m in messages]

        def job(conn: Connection, changes: list) -> tuple[int, list[int]]:
            folder = self._folder_by_id(conn, folder_id)
            known = None
            rows = []
            for blob, mask, keywords, when in prepared:
                self._ensure_blob(conn, blob)
                if keywords:
                    known = self._keywords_in(conn, folder_id) if known is None else known
                    keywords = spelled(keywords, known)
                    known = [*known, *keywords]  # a later message of the same APPEND spells them alike
                rows.append((blob.sha256, blob.size, when, mask, pack_keywords(keywords)))
            # One placement: consecutive UIDs, one MODSEQ, the quota checked for the sum (RFC 3502).
            (got,) = self._place(conn, [Placement(folder.account_id, folder.id, tuple(rows), quota_limit)])
            if isinstance(got, Exception):
                raise got
            _folder_id, uid, modseq = got
            changes.append(api.FolderChange(folder.account_id, folder.id, modseq))
            return folder.uidvalidity, list(range(uid, uid + len(rows)))

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
            # Keywords are case-insensitive: the mailbox's spelling of one is kept.
            given = spelled(keywords, self._keywords_in(conn, folder_id)) if keywords else keywords
            lowered = {k.lower() for k in given}
            new_values = []
            for row in rows:
                if unchanged_since is not None and row.modseq > unchanged_since:
                    continue
                current = set(row.keywords.split())
                if mode == "set":
                    new_mask, new_kw = mask, set(given)
                elif mode == "add":
                    have = {k.lower() for k in current}
                    new_mask, new_kw = row.flags | mask, current | {k for k in given if k.lower() not in have}
                else:
                    new_mask, new_kw = row.flags & ~mask, {k for k in current if k.lower() not in lowered}
                if new_mask != row.flags or new_kw != current:
                    new_values.append((row.uid, new_mask, pack_keywords(new_kw), row.modseq))
            if not new_values:
                return api.StoreResult([], sorted(failed))
            modseq = self._bump(conn, folder_id)
            conn.execute(
                update(m.Message)
                .where(m.Message.folder_id == folder_id, m.Message.uid == bindparam("b_uid"))
                .values(flags=bindparam("b_flags"), keywords=bindparam("b_kw"), modseq=modseq),
                [{"b_uid": u, "b_flags": f, "b_kw": k} for u, f, k, _ in new_values],
            )
            changes.append(api.FolderChange(folder.account_id, folder_id, modseq))
            updated = [api.FlagUpdate(u, modseq, join_flags(f, k), before) for u, f, k, before in new_values]
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
            # A move within one account adds nothing to its usage: no quota check.
            limit = None if move and src.account_id == dst.account_id else quota_limit
            known = self._keywords_in(conn, dst.id) if any(r.keywords for r in rows) else ()
            placement = Placement(
                dst.account_id,
                dst.id,
                [(r.blob_sha, r.size, r.internaldate, r.flags, _respelled(r.keywords, known)) for r in rows],
                limit,
            )
            (got,) = self._place(conn, [placement])
            if isinstance(got, Exception):
                raise got
            _folder_id, first, modseq = got
            mapping = [(r.uid, first + i) for i, r in enumerate(rows)]
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


def _respelled(packed: str, known) -> str:
    """A packed keyword column spelled as the target mailbox spells its keywords."""
    return pack_keywords(spelled(set(packed.split()), known)) if packed and known else packed


@functools.lru_cache(maxsize=4096)
def _flags(mask: int, keywords: str) -> frozenset[str]:
    return join_flags(mask, keywords)


class _FlagSets(dict):
    """(mask, keywords) → flag set, made once per distinct pair: a folder has few distinct flag
    sets, and FETCH renders FLAGS text by set (imap/fetchrender.FlagText), so the rows of one
    fetch_rows share their sets and a hit is a dict lookup at C speed."""

    def __missing__(self, key: tuple[int, str]) -> frozenset[str]:
        value = self[key] = join_flags(*key)
        return value


_KEEP_PENDING = 20_000


class _Keeper:
    """The background writer of FETCH renderings: one thread per store while there is work,
    at most _KEEP_PENDING rows waiting (what does not fit is dropped)."""

    def __init__(self, store: "SqlMessages") -> None:
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
