"""Messages the server writes to its own users (quota warnings, issue 5), as RFC 5322 bytes.

Text: Vietnamese first, English below (R-TEXT-1), from ``quota.notices``. Headers in RFC 2047
encoded-words (``storage.mime.encode_header``) so any client shows the Vietnamese subject; the
body is UTF-8 in base64, safe through any hop. ``Auto-Submitted: auto-generated`` (RFC 3834) so
vacation responders and list software do not answer it.
"""

from __future__ import annotations

import base64
import datetime as _dt
import email.utils
import uuid

from quota.notices import quota_warning
from storage.mime.encode import encode_address, encode_header

SENDER_NAME = "Hệ thống thư điện tử"  # "Mail system"


def postmaster(domains: tuple[str, ...] | list[str]) -> str:
    return f"postmaster@{domains[0]}"


def build_message(
    *,
    sender: str,
    to: str,
    to_name: str | None,
    subject: str,
    body: str,
    hostname: str,
    now: _dt.datetime | None = None,
) -> bytes:
    """A text/plain UTF-8 message from ``sender`` (shown as the mail system) to ``to``."""
    now = now or _dt.datetime.now(_dt.UTC)
    text = body.replace("\r\n", "\n").replace("\n", "\r\n")
    encoded = base64.encodebytes(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    headers = [
        ("From", _address(SENDER_NAME, sender)),
        ("To", _address(to_name, to)),
        ("Subject", encode_header(subject)),
        ("Date", email.utils.format_datetime(now)),
        ("Message-ID", f"<{uuid.uuid4().hex}.quota@{hostname}>"),
        ("Auto-Submitted", "auto-generated"),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "base64"),
    ]
    head = "".join(_field(name, value) for name, value in headers)
    return (head + "\r\n" + encoded).encode("ascii")


def _address(name: str | None, address: str) -> str:
    """``encode_address``, with a non-ASCII name as folded encoded-words (lines of at most 76
    characters, RFC 2047 section 2) and the address on a line of its own."""
    if not name or name.isascii():
        return encode_address(name, address)
    return f"{encode_header(name)}\r\n <{address}>"


def _field(name: str, value: str) -> str:
    # Never folded right after the colon: parsers then keep a leading space in the value.
    return f"{name}: {value}\r\n"


def quota_notice(
    *,
    threshold: int,
    used: int,
    limit: int,
    mailbox: str,
    to: str,
    to_name: str | None,
    domains: tuple[str, ...] | list[str],
    hostname: str,
    now: _dt.datetime | None = None,
) -> bytes:
    """The warning that ``mailbox`` crossed ``threshold`` % of ``limit``, addressed to ``to``
    (the owner, or for a unit mailbox its head or a delegate: the text names the mailbox)."""
    notice = quota_warning(threshold, used, limit, mailbox)
    return build_message(
        sender=postmaster(domains), to=to, to_name=to_name, subject=notice.subject, body=notice.body,
        hostname=hostname, now=now,
    )
