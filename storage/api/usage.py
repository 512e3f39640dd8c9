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


#: What is counted per account per local day (R-OPS-1/2). ``checks``: a SELECT, EXAMINE or STATUS
#: of the account's INBOX (by its owner or a delegate), or a POP3 session.
DAY_FACTS = ("login_imap", "login_pop3", "login_submission", "login_web", "checks", "received", "sent")


@dataclass(frozen=True, slots=True)
class DayFacts:
    """One account's counters of one day (local time, Asia/Ho_Chi_Minh)."""

    account_id: int
    day: _dt.date
    login_imap: int = 0
    login_pop3: int = 0
    login_submission: int = 0
    login_web: int = 0
    checks: int = 0
    check_hours: int = 0  # bit h set: a check during local hour h (0-23)
    received: int = 0
    sent: int = 0
    bytes_stored: int = 0  # the mailbox's usage at the last write of the day

    @property
    def logins(self) -> int:
        return self.login_imap + self.login_pop3 + self.login_submission + self.login_web
