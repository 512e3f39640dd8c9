"""Trace headers added at delivery: ``Return-Path`` and ``Received`` (RFC 5321 section 4.4).

They are the only bytes we add in front of a message (the rest is stored byte for byte, so signed
mail still verifies, R-SEC-2). They are identical for every recipient of one transaction, so one
blob is shared by all recipients (docs/architecture.md, "Storage"); hence ``for <rcpt>`` only when there is a
single recipient.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from email.utils import format_datetime

# Anything that could end the header, break the comment or smuggle a control character.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f()\\\udc80-\udcff]")


def clean(text: str, limit: int = 255) -> str:
    """Client-supplied text (HELO name) made safe inside a header comment."""
    return _UNSAFE.sub("?", text)[:limit]


def protocol_name(*, esmtp: bool, tls: bool, authenticated: bool, utf8: bool) -> str:
    """The ``with`` keyword: RFC 3848 (ESMTP/ESMTPS/ESMTPA/ESMTPSA), RFC 6531 (UTF8SMTP*)."""
    if not esmtp:
        return "SMTP"
    base = "UTF8SMTP" if utf8 else "ESMTP"
    return base + ("S" if tls else "") + ("A" if authenticated else "")


@dataclass(frozen=True, slots=True)
class Trace:
    helo: str
    peer_ip: str
    peer_name: str | None  # reverse DNS, None when unknown
    hostname: str  # ours
    protocol: str  # from protocol_name()
    id: str
    sender: str  # "" for the null reverse-path
    recipients: tuple[str, ...]
    when: _dt.datetime  # timezone-aware


_last_date: tuple[_dt.datetime | None, str] = (None, "")


def _date(when: _dt.datetime) -> str:
    """RFC 5322 date of ``when`` to the second; the last one is reused (a busy MX formats the
    same second hundreds of times, and email.utils takes 10 µs each)."""
    global _last_date
    second = when.replace(microsecond=0)
    if _last_date[0] != second:
        _last_date = (second, format_datetime(second))
    return _last_date[1]


def trace_headers(t: Trace) -> bytes:
    """``Return-Path`` and ``Received`` as they go in front of the stored message."""
    rdns = clean(t.peer_name) if t.peer_name else "unknown"
    ip = f"IPv6:{t.peer_ip}" if ":" in t.peer_ip else t.peer_ip
    lines = [
        f"Return-Path: <{t.sender}>",
        f"Received: from {clean(t.helo)} ({rdns} [{ip}])",
        f"\tby {t.hostname} with {t.protocol} id {t.id}",
    ]
    if len(t.recipients) == 1:
        lines.append(f"\tfor <{t.recipients[0]}>;")
    else:
        lines[-1] += ";"
    lines.append(f"\t{_date(t.when)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
