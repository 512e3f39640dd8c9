"""R-OPS-1: did each mailbox get checked as the profile's rule asks (pure functions)?

A check is a SELECT, EXAMINE or STATUS of the mailbox's INBOX (by its owner or a delegate of a
unit mailbox) or a POP3 session, counted per local day with the hours it happened in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from config.reports import PERIOD_HOURS, CheckRule
from storage.api import DayFacts

_PERIOD_VI = {"morning": "buổi sáng", "afternoon": "buổi chiều"}


def meets(rule: CheckRule, count: int, hours: int) -> bool:
    """``count`` checks at the local hours of bitmask ``hours`` satisfy ``rule``."""
    if count < rule.per_day:
        return False
    return all(any(hours >> h & 1 for h in PERIOD_HOURS[p]) for p in rule.periods)


def describe(rule: CheckRule | None) -> tuple[str, str]:
    """The rule in words (Vietnamese, English)."""
    if rule is None or (not rule.per_day and not rule.periods):
        return "không quy định", "no rule"
    vi, en = [], []
    if rule.per_day:
        vi.append(f"ít nhất {rule.per_day} lần/ngày")
        en.append(f"at least {rule.per_day} times a day")
    if rule.periods:
        vi.append("cả " + " và ".join(_PERIOD_VI[p] for p in rule.periods))
        en.append("in the " + " and the ".join(rule.periods))
    return ", ".join(vi), ", ".join(en)


@dataclass(frozen=True)
class Mailbox:
    account_id: int
    address: str
    name: str
    kind: str  # unit, group, personal
    unit: str = ""  # the unit's path, " / "-joined ("" outside any unit)
    state: str = "active"
    used_bytes: int = 0  # now


@dataclass(frozen=True)
class DayCheck:
    day: dt.date
    count: int
    hours: int
    met: bool | None  # None: no rule that day (none for the kind, or a weekend)


@dataclass(frozen=True)
class MailboxChecks:
    mailbox: Mailbox
    rule: tuple[str, str]
    days: tuple[DayCheck, ...]

    @property
    def short_days(self) -> list[dt.date]:
        return [d.day for d in self.days if d.met is False]

    @property
    def total(self) -> int:
        return sum(d.count for d in self.days)


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def checks_report(mailboxes: Iterable[Mailbox], facts: Iterable[DayFacts], rules: Mapping[str, CheckRule],
                  start: dt.date, end: dt.date, *, working_days_only: bool = True) -> list[MailboxChecks]:
    """Each mailbox's checks day by day from ``start`` to ``end``, judged by its kind's rule."""
    by_day = {(f.account_id, f.day): f for f in facts}
    report = []
    for box in mailboxes:
        rule = rules.get(box.kind)
        days = []
        for day in days_between(start, end):
            f = by_day.get((box.account_id, day))
            count, hours = (f.checks, f.check_hours) if f else (0, 0)
            ruled = rule is not None and (rule.per_day or rule.periods) and not (working_days_only and day.weekday() >= 5)
            days.append(DayCheck(day, count, hours, meets(rule, count, hours) if ruled else None))
        report.append(MailboxChecks(box, describe(rule), tuple(days)))
    return report
