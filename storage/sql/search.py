"""The search role (storage.api.Search): SEARCH and SORT (storage/querysql.py builds the
statements) and, on SQLite, the background upkeep of the FTS5 search indexes (its own thread,
started with the role and stopped by ``close``)."""

from __future__ import annotations

import functools
import threading
import logging
import time
from typing import Sequence

from sqlalchemy import Connection, func, literal_column, select

from storage import models as m
from storage import codec, querysql
from storage.errors import Invalid
from storage.indexing import text_columns
from storage.search import Query, SortKey
from storage.sql.role import Role

log = logging.getLogger("storage.sqlstore")

#: the indexer works in quiet moments (StoreCore's index_quiet_s) or when this many delivered bodies wait for it (SEARCH scans those directly)
_INDEX_BACKLOG = 5_000


class SqlSearch(Role):
    """See storage.api.Search."""

    def __init__(self, core) -> None:
        super().__init__(core)
        self._fill_lock = threading.Lock()
        self._indexer: threading.Thread | None = None
        if self._sqlite:
            self._indexer = threading.Thread(target=self._index_loop, name="store-indexer", daemon=True)
            self._indexer.start()

    def close(self) -> None:
        """Stop the indexer (the core's closing flag is set first by the store)."""
        if self._indexer is not None:
            self._indexer.join(timeout=10)

    # -- search index (SQLite FTS5) ---------------------------------------------------------------
    _FTS_COLUMNS = '"subject", "from", "to", "cc", "bcc", "headers", "body"'

    def fill_bodies(self, limit: int | None = None) -> int:
        """Fill ``blob_meta.headers`` and ``body`` (the folded text of every header field and of
        the text parts; R-TEXT-1) of up to ``limit`` bodies (None: all) delivered since the last fill;
        returns how many.

        Why later: decoding and folding that text was a third of the event loop's CPU per
        delivered message, and nothing reads those columns but SEARCH and the FTS5 indexes. The
        indexer fills them in quiet moments (or when much waits) before it indexes those rows;
        ``search``/``sort`` fill what still waits before a query on that text (BODY, TEXT, a
        header without a column of its own), as Dovecot's FTS indexes the mail it has not
        reached before it answers. The work (parse and fold) is
        done outside the writer; the writer job only stores it, if no delete moved the mark."""
        if not self._sqlite:
            return 0
        with self._fill_lock:  # one filler at a time: the indexer, or a SEARCH that cannot wait
            with self._raw_read() as cur:
                cur.execute("SELECT body_rowid FROM fts_state")
                (start,) = cur.fetchone()
                cur.execute(
                    "SELECT m.rowid, m.sha256, b.data, b.codec FROM blob_meta m JOIN blobs b ON b.sha256 = m.sha256 "
                    "WHERE m.rowid > ? ORDER BY m.rowid LIMIT ?",
                    (start, -1 if limit is None else limit),
                )
                rows = cur.fetchall()
            if not rows:
                return 0
            filled = [(*self._search_text(sha, None if data is None else codec.unpack(data, how)), rowid)
                      for rowid, sha, data, how in rows]
            seen = [(rowid, sha) for rowid, sha, _data, _how in rows]

            def job(conn: Connection, _changes: list) -> int:
                now = conn.exec_driver_sql(
                    "SELECT rowid, sha256 FROM blob_meta WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
                    (start, seen[-1][0]),
                ).all()
                mark = conn.exec_driver_sql("SELECT body_rowid FROM fts_state").scalar_one()
                if mark != start or [tuple(r) for r in now] != seen:
                    return 0  # a delete (and a reused rowid) came between: read again next time
                conn.exec_driver_sql("UPDATE blob_meta SET headers = ?, body = ? WHERE rowid = ?", filled)
                conn.exec_driver_sql("UPDATE fts_state SET body_rowid = ?", (seen[-1][0],))
                return len(filled)

            job.directory = "neutral"  # type: ignore[attr-defined]  # no account changes
            return self._writer.run(job, background=True)

    def _search_text(self, sha256: str, inline: bytes | None) -> tuple[str, str]:
        """(headers, body) columns of one stored message."""
        try:
            if inline is not None:
                columns = text_columns(self.parse_message(inline, search_text=True), self.fold)
            else:
                with self._blobs.open(sha256) as f:
                    columns = text_columns(self.parse_message(f, search_text=True), self.fold)
        except OSError:  # a body file gone missing: nothing to search, the rest goes on
            log.exception("body %s unreadable for search", sha256)
            return "", ""
        return columns["headers"], columns["body"]

    def index_pending(self, limit: int = 200) -> int:
        """Fill up to ``limit`` bodies' search text, then add up to ``limit`` filled bodies to
        each search index (FTS5 trigrams, FTS5 words and their reversed words); returns how many
        were filled or added to the index furthest behind."""
        if not self._sqlite:
            return 0
        filled = self.fill_bodies(limit)
        words = self._words_batch(limit)

        def job(conn: Connection, _changes: list) -> int:
            last, words_last = conn.exec_driver_sql("SELECT last_rowid, words_rowid FROM fts_state").one()
            added = filled
            top = conn.exec_driver_sql(
                "SELECT max(rowid), count(*) FROM (SELECT rowid FROM blob_meta WHERE rowid > ? "
                "AND rowid <= (SELECT body_rowid FROM fts_state) ORDER BY rowid LIMIT ?)",
                (last, limit),
            ).one()
            if top[1]:
                conn.exec_driver_sql(
                    f"INSERT INTO blob_fts(rowid, {self._FTS_COLUMNS}) SELECT rowid, {self._FTS_COLUMNS} "
                    "FROM blob_meta WHERE rowid > ? AND rowid <= ?",
                    (last, top[0]),
                )
                conn.exec_driver_sql("UPDATE fts_state SET last_rowid = ?", (top[0],))
                added = max(added, top[1])
            if words is not None and words[0] != words_last:
                return max(added, words[2])  # another indexer moved on meanwhile: read again
            if words is not None:
                # The reversed words were read outside this job; a row deleted since only leaves
                # a word that matches nothing, and rowids above ``hi`` wait for the next batch.
                lo, hi, count, rterms = words
                conn.exec_driver_sql(
                    f"INSERT INTO blob_words(rowid, {self._FTS_COLUMNS}) SELECT rowid, {self._FTS_COLUMNS} "
                    "FROM blob_meta WHERE rowid > ? AND rowid <= ?",
                    (lo, hi),
                )
                conn.exec_driver_sql("INSERT OR IGNORE INTO fts_rterms (rterm) VALUES (?)", [(t,) for t in rterms])
                conn.exec_driver_sql("UPDATE fts_state SET words_rowid = ?", (hi,))
                added = max(added, count)
            return added

        job.directory = "neutral"  # type: ignore[attr-defined]  # no account changes
        return self._writer.run(job, background=True)

    def index_backlog(self) -> int:
        """Delivered bodies not yet in the search index furthest behind (0 on PostgreSQL)."""
        if not self._sqlite:
            return 0
        with self._raw_read() as cur:
            cur.execute("SELECT coalesce((SELECT max(rowid) FROM blob_meta), 0) - min(last_rowid, words_rowid) FROM fts_state")
            return max(cur.fetchone()[0], 0)

    def _words_batch(self, limit: int) -> tuple[int, int, int, list[str]] | None:
        """(from rowid, to rowid, rows, reversed words) of the next rows for the word index, read
        on a reader connection so the Python work stays off the writer thread."""
        with self._reading() as conn:
            lo, filled = conn.exec_driver_sql("SELECT words_rowid, body_rowid FROM fts_state").one()
            rows = conn.exec_driver_sql(
                f"SELECT rowid, {self._FTS_COLUMNS} FROM blob_meta WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?",
                (lo, filled, limit),
            ).all()
        if not rows:
            return None
        words: set[str] = set()
        for row in rows:
            for text in row[1:]:
                if text:
                    words.update(text.split(" "))
        return lo, rows[-1][0], len(rows), sorted(w[::-1] for w in words if w)

    def _quiet(self) -> bool:
        return time.monotonic() - self._writer.last_foreground >= self._index_quiet_s

    def _index_loop(self) -> None:
        """Fill body text and index in quiet moments, in small jobs, or when the backlog grows
        too long.

        Why wait: filling and indexing cost more CPU than storing (~0.5 ms per 10 KB body);
        done during a burst they slow the burst, and just after a group message they compete
        with telling the members' IDLE clients. SEARCH stays exact while they lag (a query on
        body text fills what waits first; rows above the index's mark are scanned), so only its
        speed depends on the backlog, which _INDEX_BACKLOG bounds under sustained load."""
        while not self._closing.wait(min(self._index_quiet_s / 2, 0.5)):
            try:
                if not self._quiet() and self.index_backlog() < _INDEX_BACKLOG:
                    continue
                while not self._closing.is_set() and self.index_pending(100) == 100:
                    if not self._quiet() and self.index_backlog() < _INDEX_BACKLOG:
                        break  # writes came in: they go first
            except Exception:
                log.exception("search indexer failed")

    def _search_stmt(self, conn: Connection, folder_id: int, query: Query, keys: Sequence[SortKey] = ()):
        suffix_words = functools.partial(self._suffix_words, conn) if self._sqlite else None
        cond = querysql.build(query, self.fold, fts=self._sqlite, suffix_words=suffix_words)
        folder = m.Message.folder_id == folder_id
        if self._sqlite and querysql.text_driven(query):
            # The bodies the index finds lead (messages by blob_sha), not a scan of the folder:
            # "+" keeps the planner from choosing the folder index instead (on PostgreSQL without
            # fresh statistics that was a bitmap AND over the whole folder per match: 48 s).
            folder = literal_column("+messages.folder_id") == folder_id
        stmt = select(m.Message.uid).where(folder, cond)
        if keys or querysql.needs_meta(query, fts=self._sqlite):
            stmt = stmt.join(m.BlobMeta, m.BlobMeta.sha256 == m.Message.blob_sha)
        return stmt

    @staticmethod
    def _suffix_words(conn: Connection, word: str) -> list[str] | None:
        """Indexed words ending with ``word`` (a range of the reversed words), at most one more
        than querysql uses, so that too many is seen."""
        start = word[::-1]
        if start[-1] == "\U0010ffff":
            return None  # no successor string to bound the range: let the trigrams answer
        following = ord(start[-1]) + 1
        end = start[:-1] + chr(0xE000 if following == 0xD800 else following)  # UTF-8 order is code point order
        rows = conn.exec_driver_sql(
            "SELECT rterm FROM fts_rterms WHERE rterm >= ? AND rterm < ? LIMIT ?",
            (start, end, querysql.MAX_SUFFIX_WORDS + 1),
        ).scalars().all()
        return [r[::-1] for r in rows]

    def _search_conn(self, conn: Connection) -> None:
        if self._sqlite:
            # Matches are read by rowid all over blob_meta: through the OS page cache, not a
            # read() per page into a 2 MB cache (16,642 matches: 139 -> 74 ms).
            conn.exec_driver_sql(f"PRAGMA mmap_size={1 << 40}")

    def search(self, folder_id: int, query: Query) -> list[int]:
        if querysql.needs_text(query):
            self.fill_bodies()
        with self._reading() as conn:
            self._search_conn(conn)
            return self._uids(conn, self._search_stmt(conn, folder_id, query).order_by(m.Message.uid))

    @staticmethod
    def _uids(conn: Connection, stmt) -> list[int]:
        """The first column of ``stmt``'s rows straight from the DB-API cursor: SQLAlchemy's
        result objects cost a third of a search with 16,642 matches."""
        result = conn.execute(stmt)
        try:
            return [row[0] for row in result.cursor.fetchall()]
        finally:
            result.close()

    _SORT_COLUMNS = {
        "arrival": m.Message.internaldate,
        "date": func.coalesce(m.BlobMeta.sent_date, m.Message.internaldate),
        "from": m.BlobMeta.sort_from,
        "to": m.BlobMeta.sort_to,
        "cc": m.BlobMeta.sort_cc,
        "subject": m.BlobMeta.sort_subject,
        "size": m.Message.size,
    }

    def sort(self, folder_id: int, keys: Sequence[SortKey], query: Query) -> list[int]:
        order = []
        for key in keys:
            column = self._SORT_COLUMNS.get(key.key)
            if column is None:
                raise Invalid(f"unknown sort key {key.key}")
            order.append(column.desc() if key.reverse else column.asc())
        order.append(m.Message.uid)
        if querysql.needs_text(query):
            self.fill_bodies()
        with self._reading() as conn:
            self._search_conn(conn)
            return self._uids(conn, self._search_stmt(conn, folder_id, query, keys).order_by(*order))
