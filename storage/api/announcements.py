"""Value type of the announcements role (storage/api/roles.py ``Announcements``, R-OPS-3)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scheduled:
    id: int
    due_at: _dt.datetime  # timezone-aware UTC
    unit_code: str | None
    subject: str
    raw: bytes
    state: str  # pending, sending (claimed by a process), sent
    delivered: int
