"""Turns a storage.search tree into a SQL condition over messages ⋈ blob_meta."""

from __future__ import annotations

import datetime as _dt
from typing import Callable

from sqlalchemy import ColumnElement, and_, column, false, literal_column, not_, or_, select, table, true

from storage import search as q
from storage.errors import Invalid
from storage.flags import BITS
from storage.models import BlobMeta, Message

_HEADER_COLUMNS = {
    "subject": BlobMeta.subject,
    "from": BlobMeta.from_,
    "to": BlobMeta.to,
    "cc": BlobMeta.cc,
    "bcc": BlobMeta.bcc,
    "message-id": BlobMeta.message_id,
}
MAX_SQL_RANGES = 200
_FTS_COLUMNS = {"subject": "subject", "from_": "from", "to": "to", "cc": "cc", "bcc": "bcc", "headers": "headers", "body": "body"}


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(col, text: str, fts: bool = False) -> ColumnElement[bool]:
    """Substring match. On SQLite, folded-text columns are answered by the FTS5 trigram index
    (which cannot serve a LIKE with an ESCAPE clause, so that is only used when needed)."""
    plain = not any(c in text for c in "%_\\")
    if fts and plain and col.key in _FTS_COLUMNS:
        name = _FTS_COLUMNS[col.key]
        fts_table = table("blob_fts", column("rowid"), column(name))
        rowid = literal_column("blob_meta.rowid")
        indexed = rowid.in_(select(fts_table.c.rowid).where(fts_table.c[name].like(f"%{text}%")))
        # Rows delivered since the background indexer last ran are scanned directly.
        last = select(literal_column("last_rowid")).select_from(table("fts_state")).scalar_subquery()
        recent = and_(rowid > last, col.like(f"%{text}%"))
        # Bodies first, then their messages (messages.blob_sha is indexed): a rare word in a big
        # folder costs its few matches, not a join over every message of the folder.
        return Message.blob_sha.in_(select(BlobMeta.sha256).where(or_(indexed, recent)))
    if plain:
        return col.like(f"%{text}%")
    return col.like(_like(text), escape="\\")


def _day_start(day: _dt.date) -> _dt.datetime:
    return _dt.datetime(day.year, day.month, day.day)


def _date(column, op: str, day: _dt.date) -> ColumnElement[bool]:
    start = _day_start(day)
    end = start + _dt.timedelta(days=1)
    if op == "before":
        return column < start
    if op == "on":
        return and_(column >= start, column < end)
    if op == "since":
        return column >= start
    raise Invalid(f"unknown date comparison {op}")


def _uids(ranges: tuple[tuple[int, int | None], ...]) -> ColumnElement[bool]:
    if len(ranges) > MAX_SQL_RANGES:
        raise Invalid("UID set too fragmented for this search")
    terms = [Message.uid >= lo if hi is None else Message.uid.between(min(lo, hi), max(lo, hi)) for lo, hi in ranges]
    return or_(*terms) if terms else false()


def build(query: q.Query, fold: Callable[[str], str], fts: bool = False) -> ColumnElement[bool]:
    """SQL for ``query``; text is compared after ``fold`` on both sides (R-TEXT-1). ``fts``: use
    the SQLite FTS5 trigram index for text (PostgreSQL's pg_trgm indexes serve plain LIKE)."""

    def contains(col, text: str) -> ColumnElement[bool]:
        return _contains(col, text, fts)

    match query:
        case q.All():
            return true()
        case q.UidSet(ranges=ranges):
            return _uids(ranges)
        case q.HasFlag(flag=flag, present=present):
            bit = BITS.get(flag.lower())
            if bit is not None:
                cond = Message.flags.op("&")(bit) != 0
            elif flag.startswith("\\"):
                raise Invalid(f"flag {flag} cannot be searched here")
            else:
                cond = _contains(Message.keywords, f" {flag} ")
            return cond if present else not_(cond)
        case q.HeaderContains(name=name, text=text):
            column = _HEADER_COLUMNS.get(name.lower())
            if column is not None:
                return contains(column, fold(text)) if text else true()
            needle = f"{fold(name)}:"
            if not text:
                return contains(BlobMeta.headers, needle)
            return and_(contains(BlobMeta.headers, needle), contains(BlobMeta.headers, fold(text)))
        case q.BodyContains(text=text):
            return contains(BlobMeta.body, fold(text))
        case q.TextContains(text=text):
            folded = fold(text)
            return or_(contains(BlobMeta.headers, folded), contains(BlobMeta.body, folded))
        case q.DateCompare(field=field, op=op, date=day):
            column = Message.internaldate if field == "internal" else BlobMeta.sent_date
            return _date(column, op, day)
        case q.SizeCompare(op=op, size=size):
            return Message.size > size if op == "larger" else Message.size < size
        case q.ModSeqAtLeast(modseq=modseq):
            return Message.modseq >= modseq
        case q.Not(query=inner):
            return not_(build(inner, fold, fts))
        case q.Or(left=left, right=right):
            return or_(build(left, fold, fts), build(right, fold, fts))
        case q.And(items=items):
            return and_(*(build(item, fold, fts) for item in items)) if items else true()
    raise Invalid(f"unsupported search key {query!r}")


def needs_meta(query: q.Query, fts: bool = False) -> bool:
    """Whether the condition touches blob_meta (so the join can be skipped). With ``fts`` the text
    conditions select bodies in a subquery of their own and need no join either."""
    match query:
        case q.HeaderContains(name=name) if name.lower() == "message-id":
            return True  # not in the FTS index: compared on blob_meta directly
        case q.HeaderContains(text=text) | q.BodyContains(text=text) | q.TextContains(text=text):
            return not (fts and not any(c in text for c in "%_\\"))
        case q.DateCompare(field=field):
            return field == "sent"
        case q.Not(query=inner):
            return needs_meta(inner, fts)
        case q.Or(left=left, right=right):
            return needs_meta(left, fts) or needs_meta(right, fts)
        case q.And(items=items):
            return any(needs_meta(item, fts) for item in items)
    return False
