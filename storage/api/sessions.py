"""Whether a login made earlier still holds (R-LIFE-*, R-PASS-4, R-BOX-3).

A password is checked once per session; the session then lasts (IMAP IDLE for days, an SMTP
submission connection for many messages). Both front ends ask this rule again later
(mailserver/sessions.py on a timer, the submission MAIL check per transaction) with the account as it
is now. Pure: tested alone in tests/test_session_revalidate.py.
"""

from __future__ import annotations

import datetime as _dt

from storage.api.types import LOGIN_STATES, Account


def why_lapsed(now: Account | None, password_changed_at: _dt.datetime | None, *, check_password: bool = True) -> str | None:
    """Why a login no longer holds, or None while it does. ``password_changed_at``: the account's
    value when the password was checked; a different one now means it was changed or reset (an
    operator's ``account passwd``, a unit handover). ``check_password=False`` for the account a
    session acts as on someone else's password (a delegate in a unit mailbox): only its state
    counts."""
    if now is None:
        return "account deleted"
    if now.state not in LOGIN_STATES:
        return f"account {now.state.value}"
    if check_password and now.password_changed_at != password_changed_at:
        return "password changed"
    return None
