"""Small helpers shared by the SqlStore modules: flag bits, chunking, UTC times as stored
(naive UTC in the database, aware UTC in the API) and INBOX's canonical spelling."""

from __future__ import annotations

import datetime as _dt
from typing import Iterator, Sequence

from storage.flags import BITS

DELETED = BITS["\\deleted"]
SEEN = BITS["\\seen"]
CHUNK = 500


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)


def _to_db(when: _dt.datetime | None) -> _dt.datetime:
    if when is None:
        return _utcnow()
    if when.tzinfo is not None:
        when = when.astimezone(_dt.UTC).replace(tzinfo=None)
    return when


def _from_db(when: _dt.datetime | None) -> _dt.datetime | None:
    return None if when is None else when.replace(tzinfo=_dt.UTC)


def _chunks(items: Sequence[int], size: int = CHUNK) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_inbox(name: str) -> bool:
    return name.upper() == "INBOX"


def _canonical(name: str) -> str:
    return "INBOX" if _is_inbox(name) else name
