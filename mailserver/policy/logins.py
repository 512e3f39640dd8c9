"""What a session's login was checked against, for the later re-checks (mailserver/sessions.py).

A value type shared by the IMAP and POP3 front ends, which build one at login, and the session
guard, which compares it with the account as it is now (``storage.api.sessions.why_lapsed``).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.api import Account


@dataclass(frozen=True, slots=True)
class Login:
    """One account a session depends on. ``password_changed_at``: as read when the password was
    checked (``check_password``); a different value now means the password was changed or reset
    since. For the account a session acts as on someone else's password (a unit mailbox opened
    by a delegate through SASL's authorization identity) only its state counts."""

    account_id: int
    password_changed_at: _dt.datetime | None
    check_password: bool = True

    @classmethod
    def of(cls, account: Account, *, check_password: bool = True) -> Login:
        return cls(account.id, account.password_changed_at, check_password)
