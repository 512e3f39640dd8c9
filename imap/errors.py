"""The one mapping of storage error kinds to IMAP responses (RFC 5530 response codes).

Clients get generic text; the detail of the exception goes to the log only.
"""

from __future__ import annotations

from storage.errors import ErrorKind, StoreError

#: kind → (status, response code and text)
RESPONSES: dict[ErrorKind, tuple[bytes, bytes]] = {
    ErrorKind.NOQUOTA: (b"NO", b"[OVERQUOTA] Quota exceeded"),
    ErrorKind.NOTFOUND: (b"NO", b"[NONEXISTENT] No such mailbox or message"),
    ErrorKind.EXISTS: (b"NO", b"[ALREADYEXISTS] Mailbox already exists"),
    ErrorKind.NOPERM: (b"NO", b"[NOPERM] Permission denied"),
    ErrorKind.TOOBIG: (b"NO", b"[TOOBIG] Message too big"),
    ErrorKind.INVALID: (b"NO", b"[CANNOT] Invalid request"),
    ErrorKind.TEMP: (b"NO", b"[UNAVAILABLE] Temporary failure, try again"),
}

SERVER_BUG = (b"NO", b"[SERVERBUG] Internal error")


class Refused(Exception):
    """A well-formed command the server declines: answered ``NO`` with ``text`` (which may
    start with a response code), where a ParseError would answer BAD."""

    def __init__(self, text: bytes) -> None:
        super().__init__(text.decode("ascii", "replace"))
        self.text = text


def response_for(exc: BaseException) -> tuple[bytes, bytes]:
    """Status and text for an exception raised while running a command."""
    if isinstance(exc, StoreError):
        return RESPONSES.get(exc.kind, RESPONSES[ErrorKind.TEMP])
    return SERVER_BUG
