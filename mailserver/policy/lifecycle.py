"""Account lifecycle (R-LIFE-1..5, R-PASS-1/3): which state an account must move to, and when.

``decide_account_state(facts, rules, now)`` is pure: ``mailserver lifecycle run`` (and the server's
scheduled job) loads each account's facts, applies the returned transition and, when
``notify_unit`` is set, tells the unit (lamdong art. 7.2). Times must all be timezone-aware (or
all naive UTC); ``now`` comes from the caller's clock.

Boundaries: a period of N months ends at the same day-of-month and time N calendar months later
(clamped to the month's last day: 30 Nov + 3 months = 28/29 Feb); the transition is due from that
instant on (``now >= deadline``). "No access for 3 months" counts from the latest of creation,
last login and the operator's last unlock or re-issue (lamdong art. 7.2d "kể từ lúc khai báo hoặc
lần truy xuất sau cùng"; most art. 13.3 "kể từ lúc tạo lập hoặc lần truy cập cuối cùng").

Where a regulation only says that a unit's request is handled (lamdong art. 7.2c, moj art. 12,
hcm-q4 art. 6), the operator revokes with ``mailserver account revoke``; rules here are the
deadlines the job enforces by itself. Rules per profile (seed articles):

- molisa: revoked 2 days after the written notice (art. 8.2); the initial password must be
  changed within 24 hours of the account notice (art. 11.2). The seed sets the deadline but no
  sanction; the account is then locked until the operator resets the password (R-PASS-4).
- lamdong: no access for 3 months → revoked, unit notified (art. 7.2d).
- most: no access 6 months → locked, 12 → revoked (art. 13.3). Leavers (art. 13.2b): revoked
  within 6 months of the unit's notice — the job revokes at that latest date, the operator may
  do it sooner — and, when nobody gave notice, at most 12 months after leaving (``left_at``);
  former heads may keep their mailbox on request (art. 18.3, ``keep_after_leaving``).
- moj, none: no automatic rule.
- hcm-q4: unused 3 months → locked, 6 → deleted (art. 8.1); a user who logged in without
  changing the initial password is locked and may be unlocked only 5 days later; passwords are
  changed every 3 months (art. 8.3b). "Immediately at first login" gets one hour of grace, so the
  job does not lock someone who is filling in the change form.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from dataclasses import dataclass, fields

__all__ = [
    "AccountFacts",
    "LifecycleRules",
    "RULES_BY_PROFILE",
    "State",
    "Transition",
    "add_months",
    "decide_account_state",
    "earliest_unlock_at",
]


class State(enum.StrEnum):
    """Account states; values equal ``storage.api.AccountState`` (policy may not import storage)."""

    ACTIVE = "active"
    MUST_CHANGE_PASSWORD = "must_change_password"
    LOCKED = "locked"
    REVOKED = "revoked"
    DELETED = "deleted"


# A transition only ever makes an account more restricted; operators undo them explicitly.
_SEVERITY = {s: i for i, s in enumerate(State)}


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """What the decision needs to know about one account."""

    state: str
    created_at: dt.datetime
    kind: str = "personal"  # personal | unit | group; groups never log in and are exempt
    last_login_at: dt.datetime | None = None  # for a unit mailbox: its delegates' access too
    reactivated_at: dt.datetime | None = None  # last operator unlock or re-issue
    password_changed_at: dt.datetime | None = None
    # When the operator-issued initial password was notified; None for a password that merely
    # expired (the first-login lock of hcm-q4 art. 8.3b is about initial passwords only).
    must_change_since: dt.datetime | None = None
    notice_at: dt.datetime | None = None  # written notice received: leaving, transfer, violation
    left_at: dt.datetime | None = None  # date of the leaving decision, when recorded
    keep_after_leaving: bool = False  # most art. 18.3: former heads keep theirs on request
    exempt_from_inactivity: bool = False  # service accounts, mailboxes kept on request
    locked_at: dt.datetime | None = None
    lock_reason: str | None = None


@dataclass(frozen=True, slots=True)
class LifecycleRules:
    """One profile's rules; None turns a rule off. Field names and units are the YAML keys of
    ``lifecycle.*`` and ``passwords.*`` (config/settings.py), one name per thing."""

    lock_after_inactive_months: int | None = None
    revoke_after_inactive_months: int | None = None
    delete_after_inactive_months: int | None = None
    revoke_after_notice_days: int | None = None  # from notice_at
    leaver_revoke_months: int | None = None  # from notice_at: revoked at the latest this late
    leaver_revoke_max_months: int | None = None  # from left_at, when nobody gave notice
    notify_unit: bool = False
    initial_change_hours: int | None = None  # from must_change_since: then locked
    first_login_grace_hours: int | None = None  # after a login that kept the initial password
    unlock_wait_days: int | None = None  # after a lock for an unchanged initial password
    max_age_months: int | None = None  # password age before a change is required

    @classmethod
    def from_settings(cls, lifecycle: object, passwords: object) -> LifecycleRules:
        """Rules from the ``lifecycle`` and ``passwords`` settings slices (read by name)."""
        values = {}
        for f in fields(cls):
            source = passwords if hasattr(passwords, f.name) else lifecycle
            values[f.name] = getattr(source, f.name, f.default)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Transition:
    """Move the account to ``state``; ``due_at`` is the deadline that made it due."""

    state: State
    reason: str
    due_at: dt.datetime
    notify_unit: bool = False


#: The shipped profiles' rules; config/profiles/<name>.yaml sets the same values (a test checks).
RULES_BY_PROFILE: dict[str, LifecycleRules] = {
    "molisa": LifecycleRules(  # R-LIFE-2, R-PASS-1
        revoke_after_notice_days=2, initial_change_hours=24
    ),
    "lamdong": LifecycleRules(revoke_after_inactive_months=3, notify_unit=True),  # R-LIFE-3
    "most": LifecycleRules(  # R-LIFE-4
        lock_after_inactive_months=6,
        revoke_after_inactive_months=12,
        leaver_revoke_months=6,
        leaver_revoke_max_months=12,
    ),
    "moj": LifecycleRules(),
    "hcm-q4": LifecycleRules(  # R-LIFE-5, R-PASS-3
        lock_after_inactive_months=3,
        delete_after_inactive_months=6,
        first_login_grace_hours=1,
        unlock_wait_days=5,
        max_age_months=3,
    ),
    "none": LifecycleRules(),
}

UNCHANGED_INITIAL_PASSWORD = "initial_password_not_changed"


def add_months(when: dt.datetime, months: int) -> dt.datetime:
    """``when`` plus calendar months, the day clamped to the target month's length."""
    index = when.month - 1 + months
    year, month = when.year + index // 12, index % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def _last_activity(f: AccountFacts) -> dt.datetime:
    return max(t for t in (f.created_at, f.last_login_at, f.reactivated_at) if t is not None)


def _leaving(f: AccountFacts, r: LifecycleRules) -> list[tuple[State, str, dt.datetime]]:
    found = []
    if f.notice_at is not None and r.revoke_after_notice_days is not None:
        due = f.notice_at + dt.timedelta(days=r.revoke_after_notice_days)
        found.append((State.REVOKED, "notice", due))
    if not f.keep_after_leaving:
        if f.notice_at is not None and r.leaver_revoke_months is not None:
            found.append((State.REVOKED, "notice", add_months(f.notice_at, r.leaver_revoke_months)))
        if f.left_at is not None and r.leaver_revoke_max_months is not None:
            due = add_months(f.left_at, r.leaver_revoke_max_months)
            found.append((State.REVOKED, "left_without_notice", due))
    return found


def _inactivity(f: AccountFacts, r: LifecycleRules) -> list[tuple[State, str, dt.datetime]]:
    since = _last_activity(f)
    return [
        (state, "inactive", add_months(since, months))
        for months, state in (
            (r.lock_after_inactive_months, State.LOCKED),
            (r.revoke_after_inactive_months, State.REVOKED),
            (r.delete_after_inactive_months, State.DELETED),
        )
        if months is not None
    ]


def _passwords(f: AccountFacts, r: LifecycleRules) -> list[tuple[State, str, dt.datetime]]:
    found = []
    if f.state == State.MUST_CHANGE_PASSWORD and f.must_change_since is not None:
        if r.initial_change_hours is not None:
            due = f.must_change_since + dt.timedelta(hours=r.initial_change_hours)
            found.append((State.LOCKED, UNCHANGED_INITIAL_PASSWORD, due))
        login = f.last_login_at
        if r.first_login_grace_hours is not None and login and login >= f.must_change_since:
            due = login + dt.timedelta(hours=r.first_login_grace_hours)
            found.append((State.LOCKED, UNCHANGED_INITIAL_PASSWORD, due))
    if f.state == State.ACTIVE and r.max_age_months is not None:
        due = add_months(f.password_changed_at or f.created_at, r.max_age_months)
        found.append((State.MUST_CHANGE_PASSWORD, "password_expired", due))
    return found


def _candidates(f: AccountFacts, r: LifecycleRules) -> list[tuple[State, str, dt.datetime]]:
    found = _leaving(f, r)
    if f.kind != "group":  # a group never logs in and has no password of its own
        if not f.exempt_from_inactivity:
            found += _inactivity(f, r)
        found += _passwords(f, r)
    return found


def decide_account_state(
    facts: AccountFacts, rules: LifecycleRules, now: dt.datetime
) -> Transition | None:
    """The transition due at ``now``, or None. When several are due, the most severe wins
    (deleted > revoked > locked > must change password), then the earliest deadline."""
    current = _SEVERITY.get(State(facts.state), 0)
    due = [c for c in _candidates(facts, rules) if c[2] <= now and _SEVERITY[c[0]] > current]
    if not due:
        return None
    worst = max(_SEVERITY[c[0]] for c in due)
    state, reason, due_at = min((c for c in due if _SEVERITY[c[0]] == worst), key=lambda c: c[2])
    notify = rules.notify_unit and reason != "notice"  # the unit asked for it; no need to tell it
    return Transition(state, reason, due_at, notify_unit=notify)


def earliest_unlock_at(facts: AccountFacts, rules: LifecycleRules) -> dt.datetime | None:
    """When an unlock request may be handled (hcm-q4 art. 8.3b: 5 days after a lock for an
    unchanged initial password); None when it may be handled at once."""
    if (
        rules.unlock_wait_days is None
        or facts.state != State.LOCKED
        or facts.lock_reason != UNCHANGED_INITIAL_PASSWORD
        or facts.locked_at is None
    ):
        return None
    return facts.locked_at + dt.timedelta(days=rules.unlock_wait_days)
