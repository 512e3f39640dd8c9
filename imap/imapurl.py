"""IMAP URLs naming a message or a section of one (RFC 5092), as CATENATE takes them (RFC 4469 §5).

Accepted: an absolute ``imap://[user@]host[:port]/mailbox;UIDVALIDITY=n/;UID=m[/;SECTION=s][/;PARTIAL=o[.l]]``,
the same from ``/mailbox…`` (relative to this server) and ``;UID=m…`` (relative to the selected
mailbox). Whether the host and user are this server and the session's user is the caller's
check; URLAUTH (RFC 4467) is not supported. Anything else is a BadUrl.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

_ABSOLUTE = re.compile(r"^imap://(?:([^@/]*)@)?([^/:@]+)(?::(\d+))?(/.*)$", re.I)
_UIDVALIDITY = re.compile(r";UIDVALIDITY=([1-9]\d{0,9})$", re.I)
_UID = re.compile(r"^;UID=([1-9]\d{0,9})$", re.I)
_SECTION = re.compile(r"^;SECTION=(.+)$", re.I)
_PARTIAL = re.compile(r"^;PARTIAL=(\d{1,10})(?:\.([1-9]\d{0,9}))?$", re.I)
_UNRESERVED = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,=:@/%;]*$")


class BadUrl(Exception):
    """Not a URL this server resolves (``NO [BADURL url]``)."""


@dataclass(frozen=True)
class MessageUrl:
    user: str | None  # from an absolute URL
    host: str | None
    mailbox: bytes | None  # None: the selected mailbox; the name %-decoded, as sent (UTF-8 or modified UTF-7)
    uidvalidity: int | None
    uid: int
    section: bytes  # b"" for the whole message; as in BODY[section], %-decoded
    partial: tuple[int, int | None] | None


def parse(url: str) -> MessageUrl:
    if not _UNRESERVED.match(url) or not url:
        raise BadUrl("characters outside the URL syntax")
    user = host = None
    m = _ABSOLUTE.match(url)
    if m is not None:
        user = unquote_to_bytes(m.group(1)).decode("utf-8", "replace") if m.group(1) is not None else None
        if user is not None and ";" in user:
            raise BadUrl("authentication mechanisms are not supported")
        host = m.group(2).lower()
        path = m.group(4)
    elif url.lower().startswith("imap:"):
        raise BadUrl("not an absolute IMAP URL")
    else:
        path = url
    if path.startswith("/"):
        # The mailbox may hold "/" (the hierarchy); ";" in it is %-encoded (RFC 5092 achar).
        head, sep, rest = path[1:].partition("/;")
        if not sep:
            raise BadUrl("no message")
        rest = ";" + rest
        v = _UIDVALIDITY.search(head)
        uidvalidity = int(v.group(1)) if v else None
        raw_box = head[: v.start()] if v else head
        if not raw_box or ";" in raw_box:
            raise BadUrl("no mailbox")
        mailbox: bytes | None = unquote_to_bytes(raw_box)
        rest = "/" + rest
    elif path.startswith(";"):
        mailbox, uidvalidity, rest = None, None, "/" + path
    else:
        raise BadUrl("not an IMAP URL")
    pieces = rest.split("/")[1:]
    if not pieces or not (u := _UID.match(pieces[0])):
        raise BadUrl("no ;UID=")
    uid = int(u.group(1))
    section, partial = b"", None
    for piece in pieces[1:]:
        if (sm := _SECTION.match(piece)) and not section and partial is None:
            section = unquote_to_bytes(sm.group(1))
        elif (pm := _PARTIAL.match(piece)) and partial is None:
            partial = (int(pm.group(1)), int(pm.group(2)) if pm.group(2) else None)
        else:
            raise BadUrl("unexpected URL component")
    if uid > 0xFFFFFFFF or (uidvalidity or 0) > 0xFFFFFFFF:
        raise BadUrl("number out of range")
    return MessageUrl(user, host, mailbox, uidvalidity, uid, section, partial)
