"""ENVELOPE and search fields from a header block (RFC 3501 §7.4.2; R-TEXT-1).

ENVELOPE strings are raw (UTF-8 or latin-1 text of the bytes, encoded-words as sent), because
IMAP clients decode them themselves; the "search" fields are decoded NFC text for the index.
"""

from __future__ import annotations

import datetime as _dt
import email.utils

from storage.mime.address import format_addresses, parse_addresses
from storage.mime.headers import decode_header, raw_text

_HEADERS_TEXT_CAP = 256 * 1024
_ADDRESS_FIELDS = ("from", "sender", "reply_to", "to", "cc", "bcc")


def _firsts(fields: list[tuple[str, bytes]]) -> dict[str, bytes]:
    """Each field name's first value: one pass instead of one scan per field looked up."""
    first: dict[str, bytes] = {}
    for name, value in fields:
        first.setdefault(name, value)
    return first


def _raw(first: dict[str, bytes], name: str) -> str | None:
    value = first.get(name)
    return None if value is None else raw_text(value).strip()


def empty_envelope() -> dict:
    return {"date": None, "subject": None, "in_reply_to": None, "message_id": None,
            **{name: [] for name in _ADDRESS_FIELDS}}


def build_envelope(fields: list[tuple[str, bytes]]) -> dict:
    """RFC 3501 ENVELOPE data; sender and reply_to default to from."""
    first = _firsts(fields)
    envelope = {
        "date": _raw(first, "date"),
        "subject": _raw(first, "subject"),
        "in_reply_to": _raw(first, "in-reply-to"),
        "message_id": _raw(first, "message-id"),
    }
    for name in _ADDRESS_FIELDS:
        envelope[name] = parse_addresses(_raw(first, name.replace("_", "-")))
    for name in ("sender", "reply_to"):
        if not envelope[name]:
            envelope[name] = [dict(address) for address in envelope["from"]]
    return envelope


def parse_date(value: str | None) -> str | None:
    """ISO-8601 UTC of a Date header, None when it cannot be read. No zone means UTC."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except Exception:  # noqa: BLE001 - any Date header text must leave the date unknown, not fail
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    try:
        return parsed.astimezone(_dt.timezone.utc).isoformat()
    except (ValueError, OverflowError):
        return None


def readable_addresses(value: bytes, addresses: list[dict] | None = None) -> str:
    """"Name <mailbox@host>, ..." with names decoded; raw 8-bit names go through detection.
    ``addresses`` is the value already parsed (ENVELOPE), to save parsing it twice."""
    if addresses is None:
        addresses = parse_addresses(raw_text(value).strip())
    latin1 = not _is_utf8(value)

    def decode(name: str) -> str:
        return decode_header(name.encode("latin-1", errors="replace") if latin1 else name)

    return format_addresses(addresses, decode) or decode_header(value)


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def build_search(fields: list[tuple[str, bytes]], body: str, envelope: dict, *, headers: bool = True) -> dict:
    """Decoded NFC text the store indexes (the store folds it). ``headers=False`` leaves out the
    text of every field ("headers"), which the SQLite store fills later with the body's."""
    first = _firsts(fields)

    def addresses(name: str) -> str:
        value = first.get(name)
        return "" if value is None else readable_addresses(value, envelope[name])

    lines: list[str] = []
    size = 0
    for name, value in fields if headers else ():
        line = f"{name}: {decode_header(value)}"
        size += len(line) + 1
        if size > _HEADERS_TEXT_CAP:
            break
        lines.append(line)
    subject = first.get("subject")
    return {
        "subject": decode_header(subject).strip() if subject is not None else "",
        "from": addresses("from"),
        "to": addresses("to"),
        "cc": addresses("cc"),
        "bcc": addresses("bcc"),
        "message_id": _raw(first, "message-id") or "",
        "headers": "\n".join(lines),
        "body": body,
        "date": parse_date(_raw(first, "date")),
        "references": _raw(first, "references") or "",
    }
