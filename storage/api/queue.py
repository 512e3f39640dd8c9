"""Value types of the outbound queue (R-SEC-2 bodies as submitted): recipient states, queued
messages, claims and outcomes. The role is ``OutboundQueue`` (storage/api/roles.py); its
implementation is storage/sql/queue.py."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Mapping

QUEUED, BOUNCE, FAILED = "queued", "bounce", "failed"


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    id: int
    address: str
    domain: str
    state: str
    attempts: int
    next_attempt_at: _dt.datetime  # timezone-aware UTC
    last_attempt_at: _dt.datetime | None
    last_code: int | None
    last_reply: str | None  # the remote server's reply, or our own reason ("connection refused")
    remote: str | None  # host[:port] that gave it
    warned: bool
    notify: str | None = None  # RFC 3461 NOTIFY ("NEVER" or a subset of "SUCCESS,FAILURE,DELAY"); None: not given
    orcpt: str | None = None  # RFC 3461 ORCPT, decoded: "rfc822;bob@example.org"


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: int
    blob_sha: str
    sender: str
    size: int
    created_at: _dt.datetime
    tx_id: str | None
    recipients: tuple[QueuedRecipient, ...]
    ret: str | None = None  # RFC 3461 RET: "FULL" or "HDRS"; None: not given
    envid: str | None = None  # RFC 3461 ENVID, decoded
    requiretls: bool = False  # RFC 8689 REQUIRETLS: never sent over cleartext or unverified TLS


@dataclass(frozen=True, slots=True)
class Claim:
    """Recipients of one message at one domain: one SMTP transaction."""

    message: QueuedMessage  # ``recipients`` holds the claimed ones only
    domain: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one recipient; ``state`` is QUEUED (retry at ``next_attempt_at``),
    BOUNCE (permanent, DSN owed) or None (delivered: the row is removed)."""

    recipient_id: int
    state: str | None
    code: int | None = None
    reply: str | None = None
    remote: str | None = None
    next_attempt_at: _dt.datetime | None = None
    warned: bool | None = None  # set when a "delayed" DSN went out with this attempt


@dataclass(frozen=True, slots=True)
class RecipientDsn:
    """RFC 3461 parameters of one RCPT: ``notify`` "NEVER" or a comma list of SUCCESS, FAILURE,
    DELAY (upper case, in that order); ``orcpt`` "addr-type;original address" (xtext decoded)."""

    notify: str | None = None
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class EnvelopeOptions:
    """What the client asked of the transaction beyond addresses (RFC 3461 DSN, RFC 8689
    REQUIRETLS), kept with the queued message and carried to the next hop.
    ``recipients``: RCPT address → its DSN parameters (only those that gave some)."""

    ret: str | None = None
    envid: str | None = None
    requiretls: bool = False
    recipients: Mapping[str, RecipientDsn] = field(default_factory=dict)

    def for_recipient(self, address: str) -> RecipientDsn:
        return self.recipients.get(address) or RecipientDsn()


@dataclass(frozen=True, slots=True)
class TlsCount:
    """TLS-RPT (RFC 8460): ``count`` outbound sessions of one UTC ``day`` (YYYY-MM-DD) to
    ``domain`` under ``policy_type`` ("sts", "tlsa", "no-policy-found") at ``mx_host`` with
    ``result`` ("success" or an RFC 8460 4.3 result type)."""

    day: str
    domain: str
    policy_type: str
    mx_host: str
    result: str
    count: int = 1
