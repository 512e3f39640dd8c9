"""Value types of quota usage and retention (R-QUOTA-1/2). The role is ``Usage``
(storage/api/roles.py); its implementation is storage/sql/usage.py."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Drift:
    """One account whose stored usage differed from its messages (``recalc``)."""

    account_id: int
    address: str
    stored_bytes: int
    stored_messages: int
    actual_bytes: int
    actual_messages: int


@dataclass(frozen=True, slots=True)
class Expired:
    """A message a retention rule expires (listed by a dry run, removed by a real one)."""

    account_id: int
    address: str
    folder: str
    uid: int
    size: int
    internaldate: _dt.datetime  # timezone-aware UTC
