"""Columns of ``blob_meta`` computed once at delivery from storage.mime.parse() output.

SEARCH compares folded text (R-TEXT-1) and SORT uses RFC 5256 keys, so both are precomputed
here instead of re-parsing messages per query.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Callable

import orjson

_SUBJECT_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|tr|trl|aw|sv|vs)\s*(?:\[\d+\])?\s*:\s*|\[[^\]]*\]\s*)+", re.I)
_SUBJECT_TRAILER = re.compile(r"\s*\(fwd\)\s*$", re.I)


def base_subject(subject: str) -> str:
    """RFC 5256 base subject: without Re:/Fwd: prefixes, [list] tags and a (fwd) trailer."""
    previous = None
    text = " ".join(subject.split())
    while previous != text:
        previous = text
        text = _SUBJECT_TRAILER.sub("", text)
        text = _SUBJECT_PREFIX.sub("", text)
    return text


def _first_mailbox(addresses: list[dict] | None) -> str:
    for addr in addresses or []:
        if addr.get("mailbox") and addr.get("host") is not None:  # skip group start/end markers
            return addr["mailbox"].lower()
    return ""


def _searchable_fold(fold: Callable[[str], str]) -> Callable[[str], str]:
    return lambda text: searchable(fold(text))


def _parse_iso(value: str | None) -> _dt.datetime | None:
    if not value:
        return None
    try:
        when = _dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(_dt.UTC).replace(tzinfo=None)
    return when


def searchable(folded: str) -> str:
    """Folded text as indexed and searched: a NUL counts as a space (SQLite's LIKE and the word
    tokenizer both stop at it), so words are exactly the space-separated runs."""
    return " ".join(folded.replace("\x00", " ").split()) if "\x00" in folded else folded


def index_columns(meta: dict, fold: Callable[[str], str]) -> dict:
    raw_fold, fold = fold, _searchable_fold(fold)
    search = meta.get("search") or {}
    envelope = meta.get("envelope") or {}
    subject = search.get("subject") or ""
    return {
        "sent_date": _parse_iso(search.get("date")),
        "sort_subject": fold(base_subject(subject))[:255],
        "sort_from": _first_mailbox(envelope.get("from"))[:255],
        "sort_to": _first_mailbox(envelope.get("to"))[:255],
        "sort_cc": _first_mailbox(envelope.get("cc"))[:255],
        "subject": fold(subject),
        "from_": fold(search.get("from") or ""),
        "to": fold(search.get("to") or ""),
        "cc": fold(search.get("cc") or ""),
        "bcc": fold(search.get("bcc") or ""),
        "message_id": (search.get("message_id") or "").strip().lower(),
        "envelope": dumps(envelope),
        "structure": dumps(meta.get("structure") or {}),
        **text_columns(meta, raw_fold),
    }


def dumps(value: dict) -> str:
    """JSON text of cached metadata, with orjson (it runs at every delivery); text orjson refuses
    (a lone surrogate from an undecodable header) goes through the standard library as before."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except (orjson.JSONEncodeError, UnicodeDecodeError):
        return json.dumps(value, ensure_ascii=False)


def text_columns(meta: dict, fold: Callable[[str], str]) -> dict:
    """``blob_meta.headers`` and ``body``: the folded text of every header field and of the
    message's text parts (the SQLite store fills them after delivery, storage/sql/search.py)."""
    fold = _searchable_fold(fold)
    search = meta.get("search") or {}
    return {"headers": fold(search.get("headers") or ""), "body": fold(search.get("body") or "")}
