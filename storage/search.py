"""The search query the store understands: a small tree of frozen dataclasses.

IMAP parses SEARCH keys into this tree (message sequence numbers already turned into UIDs by the
session), and the store turns it into SQL over the indexes kept at delivery. Text comparisons
are on NFC, case-folded text; with ``fold_diacritics`` they also ignore Vietnamese tones and map
``đ`` to ``d`` (R-TEXT-1).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True, slots=True)
class All:
    pass


@dataclass(frozen=True, slots=True)
class UidSet:
    """Inclusive UID ranges; ``None`` as an upper bound means "*" (the largest UID)."""

    ranges: tuple[tuple[int, int | None], ...]


@dataclass(frozen=True, slots=True)
class HasFlag:
    flag: str  # "\\Seen", "\\Deleted", a keyword, or "\\Recent" (resolved by the session)
    present: bool = True


@dataclass(frozen=True, slots=True)
class HeaderContains:
    name: str  # lower-case header name: "subject", "from", "to", "cc", "bcc", or any other
    text: str  # empty string = the header exists


@dataclass(frozen=True, slots=True)
class BodyContains:
    text: str


@dataclass(frozen=True, slots=True)
class TextContains:
    """Header or body (IMAP TEXT)."""

    text: str


@dataclass(frozen=True, slots=True)
class DateCompare:
    field: str  # "internal" (BEFORE/ON/SINCE) or "sent" (SENTBEFORE/SENTON/SENTSINCE)
    op: str  # "before", "on", "since"
    date: _dt.date


@dataclass(frozen=True, slots=True)
class SizeCompare:
    op: str  # "larger", "smaller"
    size: int


@dataclass(frozen=True, slots=True)
class ModSeqAtLeast:
    modseq: int


@dataclass(frozen=True, slots=True)
class BlobPrefix:
    """Messages whose stored body's hash starts with ``prefix`` (IMAP SEARCH EMAILID, RFC 8474)."""

    prefix: str


@dataclass(frozen=True, slots=True)
class Not:
    query: "Query"


@dataclass(frozen=True, slots=True)
class Or:
    left: "Query"
    right: "Query"


@dataclass(frozen=True, slots=True)
class And:
    items: tuple["Query", ...]


Query = Union[All, UidSet, HasFlag, HeaderContains, BodyContains, TextContains, DateCompare, SizeCompare, ModSeqAtLeast, BlobPrefix, Not, Or, And]


@dataclass(frozen=True, slots=True)
class SortKey:
    """RFC 5256 sort criterion: "arrival", "date", "from", "to", "cc", "subject", "size"."""

    key: str
    reverse: bool = False
