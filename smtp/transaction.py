"""Per-transaction state (MAIL → RCPT* → DATA), reset by RSET, HELO/EHLO and after DATA."""

from __future__ import annotations

import secrets

from aiosmtpd.smtp import Envelope

from storage.api import Account


class Transaction(Envelope):
    """aiosmtpd's Envelope plus what our pipeline learns along the way."""

    def __init__(self) -> None:
        super().__init__()
        self.id = secrets.token_hex(6)  # log field "id", also in the Received header
        self.declared_size: int | None = None
        self.accounts: list[Account] = []  # local accounts of accepted recipients, in order
        self.remote: list[str] = []  # accepted recipients for the outbound queue (submission)
        self.send_as: set[int] = set()  # mailboxes (units) sent as: recorded in the audit log
