"""Per-transaction state (MAIL → RCPT* → DATA), reset by RSET, HELO/EHLO and after DATA."""

from __future__ import annotations

import secrets

from aiosmtpd.smtp import Envelope

from smtp.data import Chunks
from storage.api import Account, EnvelopeOptions, RecipientDsn


class Transaction(Envelope):
    """aiosmtpd's Envelope plus what our pipeline learns along the way."""

    def __init__(self) -> None:
        super().__init__()
        self.id = secrets.token_hex(6)  # log field "id", also in the Received header
        self.declared_size: int | None = None
        self.accounts: list[Account] = []  # local accounts of accepted recipients, in order
        self.remote: list[str] = []  # accepted recipients for the outbound queue (submission)
        self.send_as: set[int] = set()  # mailboxes (units) sent as: recorded in the audit log
        # RFC 3461 DSN and RFC 8689 REQUIRETLS (smtp/protocol.py fills them)
        self.dsn_ret: str | None = None
        self.dsn_envid: str | None = None
        self.requiretls = False
        self.rcpt_dsn: dict[str, RecipientDsn] = {}  # RCPT address → NOTIFY/ORCPT given with it
        self.account_rcpt: dict[int, str] = {}  # local account id → the RCPT address it came from
        self.binarymime = False  # MAIL BODY=BINARYMIME (RFC 3030): BDAT only, bytes kept as sent
        self.chunks: Chunks | None = None  # the BDAT chunks so far (smtp/protocol.py)

    def options(self) -> EnvelopeOptions:
        return EnvelopeOptions(self.dsn_ret, self.dsn_envid, self.requiretls, dict(self.rcpt_dsn))
