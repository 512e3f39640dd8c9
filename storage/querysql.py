"""Turns a storage.search tree into a SQL condition over messages ⋈ blob_meta."""

from __future__ import annotations

import datetime as _dt
from typing import Callable

from sqlalchemy import ColumnElement, and_, column, false, func, literal_column, not_, or_, select, table, true

from storage import search as q
from storage.errors import Invalid
from storage.flags import BITS
from storage.indexing import searchable
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


# Characters the FTS5 trigram tokenizer folds together (SQLite reads U+FFFE/U+FFFF as U+FFFD):
# a needle with one of them is checked with LIKE, which compares them exactly.
_TRIGRAM_UNSAFE = frozenset("\ufffd\ufffe\uffff")
MAX_SUFFIX_WORDS = 64  # words ending with the first word of a phrase, beyond which trigrams answer
MAX_WORD = 1000  # longer words go to the trigram index (FTS5 keeps tokens whole only so long)
SuffixWords = Callable[[str], "list[str] | None"]


def _fts_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def words_query(needle: str, suffix_words: SuffixWords | None) -> str | None:
    """The FTS5 expression over ``blob_words`` that finds exactly the rows containing ``needle``
    (folded, at least two words), or None when the word index cannot answer it.

    IMAP SEARCH is a substring match. In folded text (words separated by single spaces) "w1 w2 …
    wn" occurs exactly where a word ending with w1 is followed by w2 … and then a word starting
    with wn: an FTS5 phrase per word ending with w1 (from ``fts_rterms``), the last one a prefix.
    """
    words = needle.split(" ")
    if len(words) < 2 or suffix_words is None or "\x00" in needle or any(len(w) > MAX_WORD for w in words):
        return None
    firsts = suffix_words(words[0])
    if firsts is None or len(firsts) > MAX_SUFFIX_WORDS or any(len(w) > MAX_WORD for w in firsts):
        return None
    if not firsts:
        return ""
    rest = " + ".join([_fts_string(w) for w in words[1:-1]] + [_fts_string(words[-1]) + "*"])
    return " OR ".join(f"({_fts_string(first)} + {rest})" for first in firsts)


def _contains_any(cols: list, text: str, fts: bool, suffix_words: SuffixWords | None = None) -> ColumnElement[bool]:
    """Substring match in any of ``cols``. On SQLite, folded-text columns are answered by the
    FTS5 indexes: multi-word needles by the word index, others by the trigram index (a phrase
    MATCH: positions, no re-check of the stored text), short ones by LIKE on the trigram table.
    Rows delivered since the background indexer last ran are scanned directly."""
    plain = not any(c in text for c in "%_\\")
    if fts and plain and all(col.key in _FTS_COLUMNS for col in cols):
        names = [_FTS_COLUMNS[col.key] for col in cols]
        rowid = literal_column("blob_meta.rowid")
        columns = "{" + " ".join(_fts_string(n) for n in names) + "}"
        expr = words_query(text, suffix_words)
        if expr is not None:
            mark = "words_rowid"
            if expr:
                words_table = table("blob_words", column("rowid"))
                indexed = rowid.in_(select(words_table.c.rowid).where(literal_column("blob_words").op("MATCH")(f"{columns} : ({expr})")))
            else:
                indexed = false()
        elif len(text) >= 3 and not _TRIGRAM_UNSAFE.intersection(text):
            mark = "last_rowid"
            fts_table = table("blob_fts", column("rowid"))
            indexed = rowid.in_(select(fts_table.c.rowid).where(literal_column("blob_fts").op("MATCH")(f"{columns} : {_fts_string(text)}")))
        else:  # no index can answer: every row is scanned (instr compares code points exactly)
            return Message.blob_sha.in_(select(BlobMeta.sha256).where(or_(*(func.instr(col, text) > 0 for col in cols))))
        last = select(literal_column(mark)).select_from(table("fts_state")).scalar_subquery()
        # instr, not LIKE: SQLite's LIKE reads U+FFFE/U+FFFF as U+FFFD.
        recent = and_(rowid > last, or_(*(func.instr(col, text) > 0 for col in cols)))
        # Bodies first, then their messages (messages.blob_sha is indexed).
        return Message.blob_sha.in_(select(BlobMeta.sha256).where(or_(indexed, recent)))
    if plain and all(col.key in _FTS_COLUMNS for col in cols):
        # PostgreSQL: the pg_trgm indexes find the bodies, then their messages (by blob_sha).
        return Message.blob_sha.in_(select(BlobMeta.sha256).where(or_(*(col.like(f"%{text}%") for col in cols))))
    if plain:
        return or_(*(col.like(f"%{text}%") for col in cols))
    return or_(*(col.like(_like(text), escape="\\") for col in cols))


def _contains(col, text: str, fts: bool = False, suffix_words: SuffixWords | None = None) -> ColumnElement[bool]:
    return _contains_any([col], text, fts, suffix_words)


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


def build(
    query: q.Query, fold: Callable[[str], str], fts: bool = False, suffix_words: SuffixWords | None = None
) -> ColumnElement[bool]:
    """SQL for ``query``; text is compared after ``fold`` on both sides (R-TEXT-1). ``fts``: use
    the SQLite FTS5 indexes for text (PostgreSQL's pg_trgm indexes serve plain LIKE);
    ``suffix_words(w)``: the indexed words ending with ``w`` (None: unknown)."""
    fold = _searchable_fold(fold)

    def contains(col, text: str) -> ColumnElement[bool]:
        return _contains(col, text, fts, suffix_words)

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
            if column is not None and text:
                return contains(column, fold(text))
            # A field with no column of its own, or any field with "": the message has the field.
            needle = f"{fold(name)}:"
            if not text:
                # The name starts the text or follows a space (lines are folded to spaces, and
                # "cc:" must not match "bcc:"); the index narrows, the recheck decides.
                starts = or_(
                    func.substr(BlobMeta.headers, 1, len(needle)) == needle,
                    BlobMeta.headers.contains(" " + needle, autoescape=True),
                )
                return and_(contains(BlobMeta.headers, needle), Message.blob_sha.in_(select(BlobMeta.sha256).where(starts)))
            return and_(contains(BlobMeta.headers, needle), contains(BlobMeta.headers, fold(text)))
        case q.BodyContains(text=text):
            return contains(BlobMeta.body, fold(text))
        case q.TextContains(text=text):
            return _contains_any([BlobMeta.headers, BlobMeta.body], fold(text), fts, suffix_words)
        case q.DateCompare(field=field, op=op, date=day):
            column = Message.internaldate if field == "internal" else BlobMeta.sent_date
            return _date(column, op, day)
        case q.SizeCompare(op=op, size=size):
            return Message.size > size if op == "larger" else Message.size < size
        case q.ModSeqAtLeast(modseq=modseq):
            return Message.modseq >= modseq
        case q.BlobPrefix(prefix=prefix):
            return Message.blob_sha.startswith(prefix, autoescape=True)
        case q.Not(query=inner):
            return not_(build(inner, fold, fts, suffix_words))
        case q.Or(left=left, right=right):
            return or_(build(left, fold, fts, suffix_words), build(right, fold, fts, suffix_words))
        case q.And(items=items):
            return and_(*(build(item, fold, fts, suffix_words) for item in items)) if items else true()
    raise Invalid(f"unsupported search key {query!r}")


def _searchable_fold(fold: Callable[[str], str]) -> Callable[[str], str]:
    return lambda text: searchable(fold(text))


def text_driven(query: q.Query) -> bool:
    """Whether a text condition must hold for every match (it alone, or inside an AND): then the
    few bodies it finds drive the search, not a scan of the folder."""
    match query:
        case q.HeaderContains(name=name, text=text) if text and name.lower() != "message-id":
            return not any(c in text for c in "%_\\")
        case q.BodyContains(text=text) | q.TextContains(text=text):
            return bool(text) and not any(c in text for c in "%_\\")
        case q.And(items=items):
            return any(text_driven(item) for item in items)
    return False


def needs_meta(query: q.Query, fts: bool = False) -> bool:
    """Whether the condition touches blob_meta (so the join can be skipped). Plain text conditions
    select bodies in a subquery of their own and need no join."""
    match query:
        case q.HeaderContains(name=name) if name.lower() == "message-id":
            return True  # not in the FTS index: compared on blob_meta directly
        case q.HeaderContains(text=text) | q.BodyContains(text=text) | q.TextContains(text=text):
            return any(c in text for c in "%_\\")  # plain text selects bodies in a subquery
        case q.DateCompare(field=field):
            return field == "sent"
        case q.Not(query=inner):
            return needs_meta(inner, fts)
        case q.Or(left=left, right=right):
            return needs_meta(left, fts) or needs_meta(right, fts)
        case q.And(items=items):
            return any(needs_meta(item, fts) for item in items)
    return False


def needs_text(query: q.Query) -> bool:
    """Whether the condition reads ``blob_meta.body`` or ``headers`` (BODY, TEXT, a header
    field without a column of its own), anywhere in the tree."""
    match query:
        case q.BodyContains() | q.TextContains():
            return True
        case q.HeaderContains(name=name, text=text):
            return not text or name.lower() not in _HEADER_COLUMNS
        case q.Not(query=inner):
            return needs_text(inner)
        case q.Or(left=left, right=right):
            return needs_text(left) or needs_text(right)
        case q.And(items=items):
            return any(needs_text(item) for item in items)
    return False
