"""Value types of the account lifecycle (R-LIFE-1..5, R-PASS-1/3, R-ACC-2). The role is
``Lifecycle`` (storage/api/roles.py); its implementation is storage/sql/lifecycle.py."""

from __future__ import annotations

from dataclasses import dataclass

from mailserver.policy.lifecycle import AccountFacts
from storage.api import types as api

OPERATOR = "operator"
JOB = "lifecycle"
PASSWORD_EXPIRED = "password_expired"  # mailserver.policy.lifecycle's reason for an expired password


@dataclass(frozen=True, slots=True)
class Record:
    """One account with what the lifecycle knows about it."""

    account: api.Account
    facts: AccountFacts
    state_reason: str | None  # why the account is in its current state, when recorded here
