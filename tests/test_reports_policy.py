"""The pure parts of the reports (mailserver/reports): the R-OPS-1 check rules of lamdong and
hcm-q4, report periods (R-OPS-2), and statistics added up from daily counters."""

from __future__ import annotations

import datetime as dt

import pytest

from config.reports import CheckRule
from mailserver.reports.checks import Mailbox, checks_report, describe, meets
from mailserver.reports.period import quarter, year
from mailserver.reports.stats import NO_UNIT, compute
from storage.api import DayFacts

LAMDONG_UNIT, LAMDONG_PERSONAL = CheckRule(per_day=4), CheckRule(per_day=2)
HCM_UNIT = CheckRule(periods=("morning", "afternoon"))


def hours(*hs: int) -> int:
    return sum(1 << h for h in set(hs))


@pytest.mark.requirement("R-OPS-1")
@pytest.mark.parametrize(("rule", "count", "mask", "ok"), [
    (LAMDONG_UNIT, 4, hours(8, 9, 14, 16), True),
    (LAMDONG_UNIT, 3, hours(8, 9, 14), False),
    (LAMDONG_PERSONAL, 2, hours(8), True),  # twice in the same hour still counts twice
    (HCM_UNIT, 2, hours(7, 13), True),
    (HCM_UNIT, 5, hours(7, 8, 9, 10, 11), False),  # no afternoon check
    (HCM_UNIT, 1, hours(12), False),
    (CheckRule(), 0, 0, True),
])
def test_meets(rule, count, mask, ok):
    assert meets(rule, count, mask) is ok


def test_rules_in_words():
    assert describe(LAMDONG_UNIT) == ("ít nhất 4 lần/ngày", "at least 4 times a day")
    assert describe(HCM_UNIT) == ("cả buổi sáng và buổi chiều", "in the morning and the afternoon")
    assert describe(None)[1] == "no rule"


def test_short_days_skip_weekends_and_kinds_without_rules():
    unit, person = Mailbox(1, "vp@x.vn", "Văn phòng", "unit"), Mailbox(2, "an@x.vn", "An", "personal")
    friday, saturday = dt.date(2026, 12, 4), dt.date(2026, 12, 5)
    facts = [DayFacts(1, friday, checks=1, check_hours=hours(9)), DayFacts(2, friday, checks=9, check_hours=hours(9))]
    report = {r.mailbox.address: r for r in checks_report([unit, person], facts, {"unit": HCM_UNIT}, friday, saturday)}
    assert report["vp@x.vn"].short_days == [friday]  # morning only; Saturday not judged
    assert [d.met for d in report["vp@x.vn"].days] == [False, None]
    assert report["an@x.vn"].short_days == [] and report["an@x.vn"].total == 9
    every_day = checks_report([unit], [], {"unit": HCM_UNIT}, friday, saturday, working_days_only=False)
    assert every_day[0].short_days == [friday, saturday]


def test_periods():
    q4 = quarter("2026Q4")
    assert (q4.start, q4.end, q4.label) == (dt.date(2026, 10, 1), dt.date(2026, 12, 31), "Quý 4/2026")
    assert quarter("2027q1").end == dt.date(2027, 3, 31) and len(year("2026").months()) == 12
    for bad in ("2026Q5", "Q4", "2026-4"):
        with pytest.raises(ValueError, match="2026Q4"):
            quarter(bad)
    with pytest.raises(ValueError):
        year("26")


def test_stats_add_up_by_unit_and_month_with_storage_growth():
    boxes = [Mailbox(1, "vp@x.vn", "Văn phòng", "unit", unit="Văn phòng", used_bytes=500),
             Mailbox(2, "an@x.vn", "An", "personal", unit="Văn phòng", used_bytes=70),
             Mailbox(3, "lo@x.vn", "Lộc", "personal", used_bytes=30)]
    facts = [DayFacts(1, dt.date(2026, 10, 2), received=3, login_imap=2, checks=4, bytes_stored=100),
             DayFacts(1, dt.date(2026, 12, 20), received=1, sent=2, login_web=1, bytes_stored=400),
             DayFacts(2, dt.date(2026, 11, 5), login_pop3=1, checks=1, bytes_stored=60),
             DayFacts(3, dt.date(2026, 9, 30), received=50, bytes_stored=1)]  # outside the quarter
    s = compute(quarter("2026Q4"), boxes, facts)
    assert (s.total.received, s.total.sent, s.total.logins, s.total.checks, s.total.accounts) == (4, 2, 4, 5, 3)
    office = next(u for u in s.units if u.unit == "Văn phòng")
    assert (office.accounts, office.bytes_stored, office.growth) == (2, 460, 300)
    assert next(u for u in s.units if u.unit == NO_UNIT).bytes_stored == 30  # no row: its usage now
    assert [(m.month, m.received, m.logins) for m in s.months] == [("2026-10", 3, 2), ("2026-11", 0, 1), ("2026-12", 1, 1)]
