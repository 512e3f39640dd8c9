"""Header hygiene for submitted mail: remove ``Bcc``, add ``Date`` and ``Message-ID``
when missing (RFC 6409 8.1-8.3), and change nothing else — the remaining bytes stay as the
client sent them, so a signed S/MIME or OpenPGP message still verifies (R-SEC-2).

For the submission handler: ``head, body_at = read_header(spool)``; if ``clean_header(head, …)``
differs, store ``new_head`` + the spool from ``body_at`` (``store.messages.put_blob(spool, prefix=…)``
after ``spool.seek(body_at)``), else store the spool as it is.
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from email.utils import format_datetime
from typing import BinaryIO

MAX_HEADER = 1024 * 1024  # a header section longer than this is left alone
_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:")


def read_header(spool: BinaryIO, limit: int = MAX_HEADER) -> tuple[bytes, int]:
    """The header section including the blank line that ends it, and the body's offset.
    Without a blank line within ``limit`` the whole read is the header (offset = its length).
    The file is left at offset 0."""
    spool.seek(0)
    data = spool.read(limit)
    spool.seek(0)
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = data.find(sep)
        if end >= 0:
            return data[: end + len(sep)], end + len(sep)
    if data.startswith((b"\r\n", b"\n")):  # no header at all
        return b"", 0
    return data, len(data)


def _fields(head: bytes) -> list[bytes]:
    """Split into fields (each with its continuation lines and line ends)."""
    lines = head.splitlines(keepends=True)
    fields: list[bytes] = []
    for line in lines:
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def clean_header(head: bytes, *, hostname: str, now: _dt.datetime | None = None) -> bytes:
    """``head`` (from ``read_header``) without Bcc, with Date and Message-ID added at its end
    when missing. Returned unchanged (the same object) when nothing is to be done."""
    fields = _fields(head)
    blank = b""
    if fields and fields[-1] in (b"\r\n", b"\n"):
        blank = fields.pop()
    names = []
    for f in fields:
        m = _NAME.match(f)
        names.append(m.group(1).lower() if m else None)
    kept = [f for f, n in zip(fields, names) if n != b"bcc"]
    eol = b"\n" if head.endswith(b"\n\n") and not head.endswith(b"\r\n\r\n") else b"\r\n"
    added = []
    if b"date" not in names:
        added.append(b"Date: " + format_datetime(now or _dt.datetime.now(_dt.UTC)).encode() + eol)
    if b"message-id" not in names:
        added.append(f"Message-ID: <{uuid.uuid4().hex}@{hostname}>".encode() + eol)
    if len(kept) == len(fields) and not added:
        return head
    if kept and not kept[-1].endswith(b"\n"):
        kept[-1] += eol
    return b"".join(kept) + b"".join(added) + (blank or eol)
