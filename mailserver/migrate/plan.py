"""Which source messages are still missing here: resuming and incremental runs (never a duplicate).

A message is recognised by its Message-ID and size (both survive the copy unchanged: the bytes
are stored as the source serves them); one without a Message-ID by its size and INTERNALDATE.
Counts are kept, so a folder holding the same message twice gets it twice, once.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections import Counter
from dataclasses import dataclass

_FOLD = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class SourceMessage:
    uid: int
    size: int
    message_id: str | None
    internaldate: _dt.datetime
    flags: frozenset[str]


def message_key(message_id: str | None, size: int, internaldate: _dt.datetime) -> tuple:
    mid = _FOLD.sub("", message_id or "")
    if mid:
        return ("id", mid, size)
    return ("date", int(internaldate.timestamp()), size)


def message_id_from_header(raw: bytes) -> str | None:
    """The Message-ID value of a ``BODY[HEADER.FIELDS (MESSAGE-ID)]`` answer, unfolded."""
    text = raw.decode("utf-8", "replace")
    match = re.search(r"(?im)^message-id[ \t]*:(.*(?:\r?\n[ \t].*)*)", text)
    if not match:
        return None
    return _FOLD.sub(" ", match.group(1)).strip() or None


def missing(source: list[SourceMessage], present: Counter) -> list[SourceMessage]:
    """The source messages not yet here, in source order. ``present`` counts ours by
    ``message_key`` and is not changed."""
    left = Counter(present)
    out = []
    for msg in source:
        key = message_key(msg.message_id, msg.size, msg.internaldate)
        if left[key] > 0:
            left[key] -= 1
        else:
            out.append(msg)
    return out


_SYSTEM = {"\\seen": "\\Seen", "\\answered": "\\Answered", "\\flagged": "\\Flagged", "\\deleted": "\\Deleted",
           "\\draft": "\\Draft"}
_ATOM_SPECIALS = set('(){ %*"\\]')


def our_flags(raw) -> tuple[frozenset[str], list[str]]:
    """Source flags (bytes or str) → what we store, and what cannot be kept (a server's own
    backslash flags, keywords no IMAP client could name). \\Recent is session state: dropped."""
    kept, dropped = set(), []
    for flag in raw:
        text = flag.decode("utf-8", "replace") if isinstance(flag, bytes) else str(flag)
        low = text.lower()
        if low == "\\recent":
            continue
        if low in _SYSTEM:
            kept.add(_SYSTEM[low])
        elif text and not text.startswith("\\") and not any(c in _ATOM_SPECIALS or ord(c) < 33 or ord(c) > 126 for c in text):
            kept.add(text)
        else:
            dropped.append(text)
    return frozenset(kept), dropped
