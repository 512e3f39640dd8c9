"""Value types of the outbound queue (R-SEC-2 bodies as submitted): recipient states, queued
messages, claims and outcomes. The role is ``OutboundQueue`` (storage/api/roles.py); its
implementation is storage/sql/queue.py."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: int
    blob_sha: str
    sender: str
    size: int
    created_at: _dt.datetime
    tx_id: str | None
    recipients: tuple[QueuedRecipient, ...]


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
