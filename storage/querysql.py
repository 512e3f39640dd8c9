"""Turns a storage.search tree into a SQL condition over messages ⋈ blob_meta."""

from __future__ import annotations

import datetime as _dt
from typing import Callable

from sqlalchemy import ColumnElement, and_, false, not_, or_, true

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


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column, text: str) -> ColumnElement[bool]:
    return column.like(_like(text), escape="\\")


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


def build(query: q.Query, fold: Callable[[str], str]) -> ColumnElement[bool]:
    """SQL for ``query``; text is compared after ``fold`` on both sides (R-TEXT-1)."""
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
                return _contains(column, fold(text)) if text else true()
            needle = f"{fold(name)}:"
            if not text:
                return _contains(BlobMeta.headers, needle)
            return and_(_contains(BlobMeta.headers, needle), _contains(BlobMeta.headers, fold(text)))
        case q.BodyContains(text=text):
            return _contains(BlobMeta.body, fold(text))
        case q.TextContains(text=text):
            folded = fold(text)
            return or_(_contains(BlobMeta.headers, folded), _contains(BlobMeta.body, folded))
        case q.DateCompare(field=field, op=op, date=day):
            column = Message.internaldate if field == "internal" else BlobMeta.sent_date
            return _date(column, op, day)
        case q.SizeCompare(op=op, size=size):
            return Message.size > size if op == "larger" else Message.size < size
        case q.ModSeqAtLeast(modseq=modseq):
            return Message.modseq >= modseq
        case q.Not(query=inner):
            return not_(build(inner, fold))
        case q.Or(left=left, right=right):
            return or_(build(left, fold), build(right, fold))
        case q.And(items=items):
            return and_(*(build(item, fold) for item in items)) if items else true()
    raise Invalid(f"unsupported search key {query!r}")


def needs_meta(query: q.Query) -> bool:
    """Whether the condition touches blob_meta (so the join can be skipped for flag searches)."""
    match query:
        case q.HeaderContains() | q.BodyContains() | q.TextContains():
            return True
        case q.DateCompare(field=field):
            return field == "sent"
        case q.Not(query=inner):
            return needs_meta(inner)
        case q.Or(left=left, right=right):
            return needs_meta(left) or needs_meta(right)
        case q.And(items=items):
            return any(needs_meta(item) for item in items)
    return False
