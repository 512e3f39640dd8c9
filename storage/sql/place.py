"""The one write primitive: reserve UIDs, charge the quota, add the message rows.

Every path that adds messages — SMTP delivery, group fan-out (many recipients of one delivery),
IMAP APPEND, COPY and MOVE — calls ``Placer.place`` inside a writer job; there is one placer per
database (``SqlitePlacer``, ``PostgresPlacer``), chosen by ``placer()``.

Plain SQL on the DB-API cursor of the writer's transaction, because delivery is the hot path:
profiling the SMTP ingest showed that building SQLAlchemy statements (compile, cache key, result
metadata) cost more CPU than SQLite spent running them — about 8 ms per delivered message for
eleven statements, all under the GIL in the writer thread. The statements are written once here,
for SQLite (``?``) and psycopg (``%s``), and run on the same connection and transaction as the
rest of the job, so durability and group commit are unchanged.

The quota rule is ``quota.decide``'s: ``highest_usage_accepted`` gives the bound the charging
statement applies in its WHERE (check and charge in one atomic step, on PostgreSQL on the locked
row), and ``decide_delivery`` says why when a charge was refused.
"""

from __future__ import annotations

import abc
import datetime as _dt
from dataclasses import dataclass
from typing import Any, Sequence

from quota.decide import QuotaLimits, decide_delivery, highest_usage_accepted
from storage import api
from storage.errors import NoQuota, NotFound

_RECEIVE = tuple(str(s) for s in api.RECEIVE_STATES)

#: One message row to add: (blob sha256, size, internaldate as naive UTC, flag mask, keywords).
Row = tuple[str, int, _dt.datetime, int, str]


@dataclass(slots=True)  # not frozen: a fan-out builds one per member, and frozen init costs 2x
class Placement:
    """Messages for one folder of one account, added together (one MODSEQ, consecutive UIDs).

    ``folder`` is a folder id, or a name that falls back to INBOX when the account has no such
    folder (delivery). ``limit`` is the account's mailbox limit in bytes (None: unlimited);
    ``receiving`` refuses accounts not in ``api.RECEIVE_STATES`` (delivery) with NotFound."""

    account_id: int
    folder: int | str
    rows: Sequence[Row]
    limit: int | None = None
    receiving: bool = False

    @property
    def size(self) -> int:
        return sum(r[1] for r in self.rows)

    def bound(self) -> int | None:
        """The highest used_bytes at which ``quota.decide`` accepts these messages."""
        top_bytes, _top_messages = highest_usage_accepted(QuotaLimits(self.limit, None), self.size, len(self.rows))
        return top_bytes


#: What ``place`` returns per placement: (folder id, first uid, modseq), or the refusal.
Placed = tuple[int, int, int]

def _data(blob: api.BlobRef) -> tuple[bytes | None, str | None]:
    """``blobs.data`` and ``blobs.codec`` of a body: as packed by put_blob, else as delivered."""
    return (blob.stored, blob.codec) if blob.stored is not None else (blob.inline, None)


_MANY_CHUNK = 500  # placements per statement (SQLite allows 32,766 parameters; PostgreSQL 65,535)

_SQL = {
    "blob_insert": "INSERT INTO blobs (sha256, size, data, codec, created_at) VALUES (?, ?, ?, ?, ?)",
    "blob_insert_new": "INSERT OR IGNORE INTO blobs (sha256, size, data, codec, created_at) VALUES (?, ?, ?, ?, ?)",
    "meta_insert": (
        'INSERT INTO blob_meta (sha256, sent_date, sort_subject, sort_from, sort_to, sort_cc, subject, "from", '
        '"to", cc, bcc, message_id, envelope, structure, headers, body) '
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    "message_insert": (
        "INSERT INTO messages (folder_id, uid, modseq, blob_sha, size, internaldate, flags, keywords) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    # The charge carries the state and quota checks: when it changes no row, nothing was written.
    "charge": (
        "UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + ? "
        "WHERE id = ? AND (? IS NULL OR used_bytes <= ?)"
    ),
    "charge_receiving": (
        "UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + ? "
        f"WHERE id = ? AND (? IS NULL OR used_bytes <= ?) AND state IN ({', '.join(['?'] * len(_RECEIVE))})"
    ),
    "uncharge": "UPDATE accounts SET used_bytes = used_bytes - ?, used_messages = used_messages - ? WHERE id = ?",
    "reserve_id": (
        "UPDATE folders SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1 "
        "WHERE id = ? AND account_id = ? RETURNING id, uidnext, highestmodseq"
    ),
    "reserve_inbox": (
        "UPDATE folders SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1 "
        "WHERE account_id = ? AND name = 'INBOX' RETURNING id, uidnext, highestmodseq"
    ),
    "reserve_name": (
        "UPDATE folders SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1 "
        "WHERE id = (SELECT id FROM folders WHERE account_id = ? AND name IN (?, 'INBOX') "
        "ORDER BY name = ? DESC LIMIT 1) RETURNING id, uidnext, highestmodseq"
    ),
    "usage": "SELECT state, used_bytes, used_messages FROM accounts WHERE id = ?",
}
_PG = {name: sql.replace("?", "%s") for name, sql in _SQL.items()}
_PG["blob_insert"] += " ON CONFLICT (sha256) DO NOTHING"
_PG["meta_insert"] += " ON CONFLICT (sha256) DO NOTHING"
_PG["usage"] += " FOR UPDATE"

# PostgreSQL: one round trip per placement. The charge (with the state and quota checks in its
# WHERE, re-checked on the locked row), the UID reservation and, for one message, its row are
# one statement; when it returns nothing, nothing was written and ``_refusal`` says why. On
# loopback under load the seven statements of a step-by-step path cost ~1 ms of waiting per copy
# in the one writer thread, which capped ingest at ~160 messages/s.
_PG_FOLDER = {
    "id": "id = %(folder)s AND account_id = %(account)s",
    "name": "account_id = %(account)s AND name IN (%(folder)s, 'INBOX')",
}
_PG_PICK = {
    "id": "%(folder)s",
    "name": (
        "(SELECT id FROM folders WHERE account_id = %(account)s AND name IN (%(folder)s, 'INBOX') "
        "ORDER BY name = %(folder)s DESC LIMIT 1)"
    ),
}
_PG_CORE = """
WITH acct AS (
    UPDATE accounts SET used_bytes = used_bytes + %(size)s, used_messages = used_messages + %(count)s
    WHERE id = %(account)s AND (NOT %(receiving)s OR state = ANY(%(states)s))
      AND (%(bound)s::bigint IS NULL OR used_bytes <= %(bound)s::bigint)
      AND EXISTS (SELECT 1 FROM folders WHERE {match})
    RETURNING id
), folder AS (
    UPDATE folders SET uidnext = uidnext + %(count)s, highestmodseq = highestmodseq + 1
    WHERE id = {pick} AND EXISTS (SELECT 1 FROM acct)
    RETURNING id, uidnext - %(count)s AS uid, highestmodseq
)
"""
_PG_ONE = (
    "INSERT INTO messages (folder_id, uid, modseq, blob_sha, size, internaldate, flags, keywords) "
    "SELECT id, uid, highestmodseq, %(sha)s, %(size)s, %(when)s, %(mask)s, %(keywords)s FROM folder "
    "RETURNING folder_id, uid, modseq"
)
_PG_SEVERAL = "SELECT id, uid, highestmodseq FROM folder"
_PG_PLACE = {
    (kind, one): _PG_CORE.format(match=_PG_FOLDER[kind], pick=_PG_PICK[kind]) + (_PG_ONE if one else _PG_SEVERAL)
    for kind in ("id", "name")
    for one in (True, False)
}


def _sqlite_time(when: _dt.datetime) -> str:
    # The exact text SQLAlchemy's SQLite DateTime writes (naive UTC, four-digit year), so both
    # paths sort and compare alike; isoformat is several times cheaper than strftime.
    return when.isoformat(" ", "microseconds")


class Placer(abc.ABC):
    """Shared by both databases: the blob rows, the fan-out in chunks, the refusal's reason."""

    sqlite: bool
    sql: dict[str, str]

    def _time(self, when: _dt.datetime | None) -> Any:
        if when is None:
            return None
        return _sqlite_time(when) if self.sqlite else when

    @abc.abstractmethod
    def ensure_blob(self, cur, blob: api.BlobRef, columns: dict, now: _dt.datetime) -> None:
        """The body's rows (blobs, blob_meta) unless the body is stored already (per database)."""

    def _meta(self, blob: api.BlobRef, columns: dict) -> tuple:
        return (
            blob.sha256, self._time(columns["sent_date"]), columns["sort_subject"], columns["sort_from"],
            columns["sort_to"], columns["sort_cc"], columns["subject"], columns["from_"], columns["to"],
            columns["cc"], columns["bcc"], columns["message_id"], columns["envelope"], columns["structure"],
            columns["headers"], columns["body"],
        )  # fmt: skip

    def place(self, cur, placements: Sequence[Placement]) -> list[Placed | NotFound | NoQuota]:
        """Add each placement's rows, in order; a refused placement (NotFound, NoQuota) writes
        nothing and does not stop the others. Several single-message placements for distinct
        accounts (a group fan-out, R-BOX-4) take a few statements per chunk instead of a few
        per placement."""
        if len(placements) > 1 and all(len(p.rows) == 1 and isinstance(p.folder, str) for p in placements) and len(
            {p.account_id for p in placements}
        ) == len(placements):
            out: list[Placed | NotFound | NoQuota] = []
            for start in range(0, len(placements), _MANY_CHUNK):
                out += self._place_chunk(cur, placements[start : start + _MANY_CHUNK])
            return out
        results: list[Placed | NotFound | NoQuota] = []
        for p in placements:
            try:
                results.append(self.place_one(cur, p))
            except (NotFound, NoQuota) as exc:
                results.append(exc)
        return results

    @abc.abstractmethod
    def place_one(self, cur, p: Placement) -> Placed:
        """One placement; raises NotFound / NoQuota having written nothing (per database)."""

    def _insert(self, cur, folder_id: int, first: int, modseq: int, rows: Sequence[Row]) -> None:
        values = [
            (folder_id, first + i, modseq, sha, size, self._time(when), mask, keywords)
            for i, (sha, size, when, mask, keywords) in enumerate(rows)
        ]
        if len(values) == 1:
            cur.execute(self.sql["message_insert"], values[0])
        else:
            cur.executemany(self.sql["message_insert"], values)

    def _refusal(self, cur, p: Placement) -> NotFound | NoQuota | None:
        """Why ``p`` was not placed (its charge or reservation changed nothing), or None when it
        would be now (PostgreSQL: usage released by another process meanwhile; try again)."""
        cur.execute(self.sql["usage"], (p.account_id,))
        row = cur.fetchone()
        if row is None or (p.receiving and row[0] not in _RECEIVE):
            return NotFound(f"account {p.account_id} cannot receive")
        _state, used, count = row
        decision = decide_delivery(used, count, QuotaLimits(p.limit, None), p.size, len(p.rows))
        if not decision.ok:
            return NoQuota(f"account {p.account_id}: {used} + {p.size} > {p.limit}")
        return None

    def _place_chunk(self, cur, items: Sequence[Placement]) -> list:
        """The accounts and folders read (and, on PostgreSQL, locked in id order) at once, every
        folder's UID taken by one UPDATE, the rows inserted by one executemany and the quota
        charged by one UPDATE. Same checks and results as ``place_one``."""
        mark = "?" if self.sqlite else "%s"
        ids = [p.account_id for p in items]
        names = sorted({p.folder for p in items} | {"INBOX"})
        sql = (
            "SELECT a.id, a.state, a.used_bytes, f.id, f.name FROM accounts a JOIN folders f ON f.account_id = a.id "
            f"WHERE a.id IN ({','.join([mark] * len(ids))}) AND f.name IN ({','.join([mark] * len(names))})"
        )
        if not self.sqlite:
            sql += " ORDER BY a.id FOR UPDATE OF a"
        cur.execute(sql, (*ids, *names))
        found: dict[int, list[tuple]] = {}
        for row in cur.fetchall():
            found.setdefault(row[0], []).append(row)
        results: list = []
        chosen: list[tuple[int, Placement]] = []  # (folder_id, placement)
        bounds: dict[tuple[int | None, int], int | None] = {}  # a fan-out: one limit and size for most
        for p in items:
            rows = [r for r in found.get(p.account_id, ()) if r[4] in (p.folder, "INBOX")]
            if (not rows) or (p.receiving and rows[0][1] not in _RECEIVE):
                results.append(NotFound(f"account {p.account_id} cannot receive"))
                continue
            row = next((r for r in rows if r[4] == p.folder), rows[0])
            key = (p.limit, p.rows[0][1])
            bound = bounds[key] if key in bounds else bounds.setdefault(key, p.bound())
            if bound is not None and row[2] > bound:
                results.append(NoQuota(f"account {p.account_id}: {row[2]} + {p.size} > {p.limit}"))
                continue
            results.append(len(chosen))  # index into chosen, replaced below
            chosen.append((row[3], p))
        if not chosen:
            return results
        folders = [fid for fid, _p in chosen]
        cur.execute(
            "UPDATE folders SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 "
            f"WHERE id IN ({','.join([mark] * len(folders))}) RETURNING id, uidnext, highestmodseq",
            folders,
        )
        taken = {fid: (uidnext - 1, modseq) for fid, uidnext, modseq in cur.fetchall()}
        cur.executemany(
            self.sql["message_insert"],
            [
                (fid, *taken[fid], sha, size, self._time(when), mask, kw)
                for fid, p in chosen
                for sha, size, when, mask, kw in p.rows
            ],
        )
        # One size for the whole chunk when all are the same message (a fan-out); else per account.
        sizes = {p.rows[0][1] for _f, p in chosen}
        if len(sizes) == 1:
            accounts = [p.account_id for _f, p in chosen]
            cur.execute(
                f"UPDATE accounts SET used_bytes = used_bytes + {mark}, used_messages = used_messages + 1 "
                f"WHERE id IN ({','.join([mark] * len(accounts))})",
                (sizes.pop(), *accounts),
            )
        else:
            cur.executemany(self.sql["uncharge"], [(-p.rows[0][1], -1, p.account_id) for _f, p in chosen])
        return [r if not isinstance(r, int) else (chosen[r][0], *taken[chosen[r][0]]) for r in results]


class SqlitePlacer(Placer):
    """SQLite: the one writer holds the database lock, so a charge, reservation and insert in
    three statements are as atomic as one."""

    sqlite = True
    sql = _SQL

    def ensure_blob(self, cur, blob: api.BlobRef, columns: dict, now: _dt.datetime) -> None:
        # One statement when the body is known already, two when new: every statement is a GIL
        # hand-off for the writer thread, which the busy event loop makes it wait for.
        cur.execute(self.sql["blob_insert_new"], (blob.sha256, blob.size, *_data(blob), self._time(now)))
        if cur.rowcount == 1:
            cur.execute(self.sql["meta_insert"], self._meta(blob, columns))

    def place_one(self, cur, p: Placement) -> Placed:
        size, count, bound = p.size, len(p.rows), p.bound()
        if p.receiving:
            cur.execute(self.sql["charge_receiving"], (size, count, p.account_id, bound, bound, *_RECEIVE))
        else:
            cur.execute(self.sql["charge"], (size, count, p.account_id, bound, bound))
        if cur.rowcount != 1:
            raise self._refusal(cur, p) or NotFound(f"account {p.account_id} cannot receive")
        if isinstance(p.folder, int):
            cur.execute(self.sql["reserve_id"], (count, p.folder, p.account_id))
        elif p.folder == "INBOX":
            cur.execute(self.sql["reserve_inbox"], (count, p.account_id))
        else:
            cur.execute(self.sql["reserve_name"], (count, p.account_id, p.folder, p.folder))
        row = cur.fetchone()
        if row is None:  # no such folder (no INBOX: never the case for a live account)
            cur.execute(self.sql["uncharge"], (size, count, p.account_id))
            raise NotFound(f"account {p.account_id}: no folder {p.folder}")
        folder_id, uidnext, modseq = row
        self._insert(cur, folder_id, uidnext - count, modseq, p.rows)
        return folder_id, uidnext - count, modseq


class PostgresPlacer(Placer):
    sqlite = False
    sql = _PG

    def ensure_blob(self, cur, blob: api.BlobRef, columns: dict, now: _dt.datetime) -> None:
        # Both inserts in one round trip (psycopg pipeline); a known body is left alone.
        with cur.connection.pipeline():
            cur.execute(self.sql["blob_insert"], (blob.sha256, blob.size, *_data(blob), now))
            cur.execute(self.sql["meta_insert"], self._meta(blob, columns))

    def place_one(self, cur, p: Placement) -> Placed:
        one = len(p.rows) == 1
        kind = "id" if isinstance(p.folder, int) else "name"
        params = {
            "account": p.account_id, "folder": p.folder, "receiving": p.receiving, "states": list(_RECEIVE),
            "bound": p.bound(), "size": p.size, "count": len(p.rows),
        }  # fmt: skip
        if one:
            sha, _size, when, mask, keywords = p.rows[0]
            params.update(sha=sha, when=when, mask=mask, keywords=keywords)
        for _attempt in range(2):
            cur.execute(_PG_PLACE[kind, one], params)
            row = cur.fetchone()
            if row is not None:
                folder_id, first, modseq = row
                if not one:
                    self._insert(cur, folder_id, first, modseq, p.rows)
                return folder_id, first, modseq
            # Nothing was written. The account row is now locked by us: the reason found holds
            # until the commit; none found means another process released usage meanwhile.
            refusal = self._refusal(cur, p)
            if refusal is not None:
                raise refusal
        raise NotFound(f"account {p.account_id}: no folder {p.folder}")


def placer(sqlite: bool) -> Placer:
    return SqlitePlacer() if sqlite else PostgresPlacer()
