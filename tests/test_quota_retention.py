"""Retention rules (R-QUOTA-2) and quota warning notices."""

from __future__ import annotations

import datetime as dt

import pytest

from quota.notices import quota_warning
from quota.retention import DEFAULT_RULES, RetentionRule, cutoffs, expired

pytestmark = pytest.mark.requirement("R-QUOTA-2")

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 8, 31, 2, 0, tzinfo=UTC)
FOLDERS = [("INBOX", None), ("Sent", "\\Sent"), ("Thư rác", "\\Junk"), ("Trash", "\\Trash"),
           ("Lưu trữ/2019", None)]


def test_r_quota_2_default_rules_only_empty_junk_and_trash() -> None:
    """R-QUOTA-2: by default only Junk and Trash expire (30 days); official mail is kept."""
    result = cutoffs(FOLDERS, DEFAULT_RULES, NOW)
    assert result == {"Thư rác": NOW - dt.timedelta(days=30), "Trash": NOW - dt.timedelta(days=30)}


@pytest.mark.parametrize(
    ("date", "is_expired"),
    [
        (NOW - dt.timedelta(days=30, microseconds=1), True),
        (NOW - dt.timedelta(days=30), False),  # exactly 30 days old: kept until the next instant
        (NOW - dt.timedelta(days=29), False),
    ],
)
def test_r_quota_2_expired_boundary(date: dt.datetime, is_expired: bool) -> None:
    cutoff = cutoffs(FOLDERS, DEFAULT_RULES, NOW)["Trash"]
    assert expired(date, cutoff) is is_expired


def test_r_quota_2_folder_without_rule_never_expires() -> None:
    assert not expired(dt.datetime(1990, 1, 1, tzinfo=UTC), cutoffs(FOLDERS, DEFAULT_RULES, NOW).get("INBOX"))


def test_r_quota_2_six_months_everywhere_is_a_calendar_rule() -> None:
    """"Older than 6 months" (most 17.3, hcm-q4 11.8) as an operator rule: 31 Aug → 28 Feb."""
    result = cutoffs(FOLDERS, [RetentionRule("*", older_than_months=6)], NOW)
    assert set(result) == {name for name, _ in FOLDERS}
    assert result["INBOX"] == dt.datetime(2026, 2, 28, 2, 0, tzinfo=UTC)


def test_r_quota_2_most_specific_rule_applies() -> None:
    """"Junk 30 days, everything 6 months, Sent 10 days" reads as written: name > role > *."""
    rules = [*DEFAULT_RULES, RetentionRule("*", older_than_months=6), RetentionRule("Sent", older_than_days=10)]
    result = cutoffs(FOLDERS, rules, NOW)
    assert result["Sent"] == NOW - dt.timedelta(days=10)
    assert result["Thư rác"] == NOW - dt.timedelta(days=30)
    assert result["INBOX"] == dt.datetime(2026, 2, 28, 2, 0, tzinfo=UTC)


def test_r_quota_2_longest_retention_wins_among_equals() -> None:
    """Two rules for the same role: the one keeping mail longer applies."""
    rules = [RetentionRule("\\Trash", older_than_days=30), RetentionRule("\\Trash", older_than_days=90)]
    assert cutoffs(FOLDERS, rules, NOW) == {"Trash": NOW - dt.timedelta(days=90)}


@pytest.mark.parametrize(
    ("rule", "name", "special", "matches"),
    [
        (RetentionRule("\\Junk", older_than_days=1), "Spam", "\\Junk", True),  # role, whatever the name
        (RetentionRule("\\junk", older_than_days=1), "Spam", "\\Junk", True),
        (RetentionRule("\\Junk", older_than_days=1), "Junk", None, False),  # a name is not a role
        (RetentionRule("inbox", older_than_days=1), "INBOX", None, True),  # INBOX is case-insensitive
        (RetentionRule("Archive", older_than_days=1), "archive", None, False),
        (RetentionRule("*", older_than_days=1), "anything", None, True),
    ],
)
def test_r_quota_2_rule_matching(rule: RetentionRule, name: str, special: str | None, matches: bool) -> None:
    assert rule.matches(name, special) is matches


@pytest.mark.parametrize(
    "kwargs", [{}, {"older_than_days": 1, "older_than_months": 1}, {"older_than_days": -1}]
)
def test_r_quota_2_rule_needs_exactly_one_positive_period(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        RetentionRule("Trash", **kwargs)


def test_quota_warning_is_vietnamese_then_english() -> None:
    """The 80 % notice names usage and limit, Vietnamese first, English below."""
    notice = quota_warning(80, 1717986919, 2 * 1024**3, "annv@lamdong.gov.vn")
    assert notice.subject == "Hộp thư đã dùng 80% dung lượng / Mailbox 80% full"
    vi, en = notice.body.split("-----")
    assert "annv@lamdong.gov.vn" in vi and "1,60 GB trên tổng dung lượng 2 GB" in vi and "80%" in vi and "Thùng rác" in vi
    assert "used 80% of its space: 1.60 GB of 2 GB" in en and "empty the Trash" in en  # the same percentage


def test_quota_warning_full_mailbox() -> None:
    notice = quota_warning(100, 2 * 1024**3, 2 * 1024**3, "vpubnd.q4@tphcm.gov.vn")
    assert "Hộp thư đã đầy" in notice.subject and "đã đầy: đã dùng 2 GB trên tổng dung lượng 2 GB" in notice.body
    assert "Incoming mail is refused" in notice.body


def test_quota_warning_needs_a_limit() -> None:
    with pytest.raises(ValueError):
        quota_warning(80, 1, 0, "a@b")
