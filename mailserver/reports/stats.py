"""R-OPS-2: quarterly and yearly statistics from the daily counters (pure): totals, per unit,
per month; storage at the end of the period and its growth within it."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from mailserver.reports.checks import Mailbox
from mailserver.reports.period import Period
from storage.api import DAY_FACTS, DayFacts

NO_UNIT = "(không thuộc đơn vị / no unit)"


@dataclass
class Figures:
    """Counters summed over a set of days and mailboxes."""

    login_imap: int = 0
    login_pop3: int = 0
    login_submission: int = 0
    login_web: int = 0
    checks: int = 0
    received: int = 0
    sent: int = 0

    def add(self, f: DayFacts) -> None:
        for name in DAY_FACTS:
            setattr(self, name, getattr(self, name) + getattr(f, name))

    @property
    def logins(self) -> int:
        return self.login_imap + self.login_pop3 + self.login_submission + self.login_web


@dataclass
class UnitFigures(Figures):
    unit: str = ""
    accounts: int = 0
    bytes_stored: int = 0  # at the end of the period
    growth: int = 0  # within the period


@dataclass
class MonthFigures(Figures):
    month: str = ""  # 2026-10


@dataclass
class Stats:
    period: Period
    unit: str | None  # the unit asked for, or None for every mailbox
    total: UnitFigures
    units: list[UnitFigures] = field(default_factory=list)
    months: list[MonthFigures] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"period": {"label": self.period.label, "start": self.period.start.isoformat(),
                           "end": self.period.end.isoformat()},
                "unit": self.unit, "total": _row(self.total), "states": self.states,
                "units": [_row(u) for u in self.units], "months": [_row(m) for m in self.months]}


def _row(figures: Figures) -> dict:
    return {**asdict(figures), "logins": figures.logins}


def compute(period: Period, mailboxes: Iterable[Mailbox], facts: Iterable[DayFacts], unit: str | None = None) -> Stats:
    boxes = {b.account_id: b for b in mailboxes}
    rows = sorted((f for f in facts if f.account_id in boxes and period.start <= f.day <= period.end),
                  key=lambda f: (f.account_id, f.day))
    units: dict[str, UnitFigures] = {}
    months = {f"{y}-{m:02d}": MonthFigures(month=f"{y}-{m:02d}") for y, m in period.months()}
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for f in rows:
        box = boxes[f.account_id]
        units.setdefault(box.unit or NO_UNIT, UnitFigures(unit=box.unit or NO_UNIT)).add(f)
        months[f"{f.day.year}-{f.day.month:02d}"].add(f)
        first.setdefault(f.account_id, f.bytes_stored)
        last[f.account_id] = f.bytes_stored
    for box in boxes.values():
        u = units.setdefault(box.unit or NO_UNIT, UnitFigures(unit=box.unit or NO_UNIT))
        u.accounts += 1
        u.bytes_stored += last.get(box.account_id, box.used_bytes)
        u.growth += last.get(box.account_id, 0) - first.get(box.account_id, 0)
    total = UnitFigures(unit=unit or "")
    for u in units.values():
        for name in (*DAY_FACTS, "accounts", "bytes_stored", "growth"):
            setattr(total, name, getattr(total, name) + getattr(u, name))
    states = dict(sorted(Counter(b.state for b in boxes.values()).items()))
    return Stats(period, unit, total, sorted(units.values(), key=lambda u: u.unit), list(months.values()), states)


def by_kind(mailboxes: Iterable[Mailbox]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for b in mailboxes:
        counts[b.kind] += 1
    return dict(counts)
