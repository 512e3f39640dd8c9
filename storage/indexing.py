"""Columns of ``blob_meta`` computed once at delivery from storage.mime.parse() output.

SEARCH compares folded text (R-TEXT-1) and SORT uses RFC 5256 keys, so both are precomputed
here instead of re-parsing messages per query.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import json
import re
from typing import Callable

import orjson

_WSP = " \t"
_BLOB = re.compile(r"\[[^\[\]]*\][ \t]*")
# subj-refwd: ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
_REFWD = re.compile(r"(?:re|fwd?)[ \t]*(?:\[[^\[\]]*\][ \t]*)?:", re.I)
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz\x00", "ABCDEFGHIJKLMNOPQRSTUVWXYZ ")


def ascii_casemap(text: str) -> str:
    """The key of the ``i;ascii-casemap`` collation (RFC 4790 §9.2): ASCII letters to upper
    case, every other character as it is (not str.upper: "ß" or "đ" must not change); a NUL,
    which PostgreSQL text cannot hold, becomes a space as in the search text."""
    return text.translate(_ASCII_UPPER)


def _strip_leader(text: str) -> tuple[str, bool]:
    """Step 3: one subj-leader, ``(*subj-blob subj-refwd) / WSP``, off the front (or none);
    and whether it was a subj-refwd."""
    if text[:1] in (" ", "\t"):
        return text[1:], False
    pos = 0
    while True:
        m = _REFWD.match(text, pos)
        if m:
            return text[m.end():], True
        b = _BLOB.match(text, pos)
        if not b:
            return text, False
        pos = b.end()


MSG_ID = re.compile(r"<[^<>\s\x00]+>")


def thread_refs(references: str | None, in_reply_to: str | None) -> str:
    """``blob_meta.thread_refs``: the msg-ids of References, else the first of In-Reply-To
    (RFC 5256 §3 REFERENCES step 1), lower case, space-separated ("" when none)."""
    ids = MSG_ID.findall(references or "")
    if not ids:
        ids = MSG_ID.findall(in_reply_to or "")[:1]
    return " ".join(i.lower() for i in ids)


def base_subject(subject: str) -> str:
    """RFC 5256 §2.1 base subject (the subject already decoded, step 1's encoded-words): without
    Re:/Fw:/Fwd: leaders, [blob] prefixes (unless only the blob would remain), "(fwd)" trailers,
    and a "[fwd: …]" wrapper unwrapped. The comparison key is ``ascii_casemap`` of it."""
    return extract_subject(subject)[0]


def extract_subject(subject: str) -> tuple[str, bool]:
    """(base subject, whether a reply/forward marker was removed: RFC 5256 §2.1's "subj-refwd",
    "(fwd)" trailer or "[fwd: …]" wrapper; blobs and spaces do not count)."""
    reply = False
    text = " ".join(subject.replace("\r", " ").replace("\n", " ").replace("\t", " ").split(" "))
    text = re.sub(" +", " ", text)
    while True:
        # (2) subj-trailer = "(fwd)" / WSP, as often as it matches
        while True:
            if text.endswith(" "):
                text = text[:-1]
            elif text[-5:].lower() == "(fwd)":
                text, reply = text[:-5], True
            else:
                break
        # (3)-(5) leaders and blobs, until neither matches
        while True:
            before = text
            text, refwd = _strip_leader(text)
            reply = reply or refwd
            if text == before:
                b = _BLOB.match(text)
                if b and text[b.end():].strip(_WSP):
                    text = text[b.end():]
            if text == before:
                break
        # (6) "[fwd:" … "]": unwrap and start again
        if text[:5].lower() == "[fwd:" and text.endswith("]"):
            text, reply = text[5:-1], True
            continue
        return text, reply


def _first_mailbox(addresses: list[dict] | None) -> str:
    for addr in addresses or []:
        if addr.get("mailbox") and addr.get("host") is not None:  # skip group start/end markers
            return ascii_casemap(addr["mailbox"])
    return ""


def display_address(addresses: list[dict] | None) -> str:
    """RFC 5957 DISPLAYFROM/DISPLAYTO key of the first address: its display name (RFC 2047
    decoded) when it has one, else mailbox@host; i;ascii-casemap as the other SORT keys."""
    from storage.mime.headers import decode_header

    for addr in addresses or []:
        if addr.get("mailbox") and addr.get("host") is not None:  # skip group start/end markers
            name = decode_header(addr["name"]).strip() if addr.get("name") else ""
            return ascii_casemap(name or f"{addr['mailbox']}@{addr['host']}")
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


EPOCH_DAY = _dt.date(1970, 1, 1)


def sent_day(value: str | None) -> _dt.date:
    """The day of a Date: header in its own zone (RFC 3501 §6.4.4 SENT*: "disregarding time and
    timezone"). A message without a readable Date: is sent on 1-Jan-1970, as Dovecot counts it
    (RFC 3501 leaves it open): SENTBEFORE finds it, SENTSINCE does not."""
    if not value:
        return EPOCH_DAY
    try:
        parsed = email.utils.parsedate_tz(value)
        return _dt.date(*parsed[:3]) if parsed else EPOCH_DAY
    except (ValueError, TypeError, OverflowError, IndexError):
        return EPOCH_DAY


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
        "sent_day": sent_day(envelope.get("date")),
        "sort_subject": ascii_casemap(base_subject(subject))[:255],
        "thread_refs": thread_refs(search.get("references"), envelope.get("in_reply_to")),
        "sort_from": _first_mailbox(envelope.get("from"))[:255],
        "sort_to": _first_mailbox(envelope.get("to"))[:255],
        "sort_cc": _first_mailbox(envelope.get("cc"))[:255],
        "sort_display_from": display_address(envelope.get("from"))[:255],
        "sort_display_to": display_address(envelope.get("to"))[:255],
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
