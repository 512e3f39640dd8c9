"""Value types of the review queue of the classified-document guard (R-SEC-3). The role is
``HeldMessages`` (storage/api/roles.py); its implementation is storage/sql/held.py."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

STAMPED, UNREADABLE = "stamped", "unreadable"


@dataclass(frozen=True, slots=True)
class HeldMessage:
    id: int
    blob_sha: str
    size: int
    sender: str
    account_id: int | None  # the submitting account
    local_ids: tuple[int, ...]  # local recipients' accounts
    remote: tuple[str, ...]  # remote recipients (the outbound queue on release)
    reason: str  # STAMPED | UNREADABLE
    part: str
    detail: str
    tx_id: str | None
    created_at: _dt.datetime  # timezone-aware UTC
