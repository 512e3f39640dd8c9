"""Lifecycle decisions (R-LIFE-1..5, R-PASS-1/3) at their exact boundaries."""

from __future__ import annotations

import datetime as dt

from dataclasses import replace
from pathlib import Path

import pytest

from config.loader import load_settings

from mailserver.policy.lifecycle import (
    RULES_BY_PROFILE,
    AccountFacts,
    LifecycleRules,
    State,
    add_months,
    decide_account_state,
    earliest_unlock_at,
)

pytestmark = pytest.mark.requirement("R-LIFE-2", "R-LIFE-3", "R-LIFE-4", "R-LIFE-5", "R-PASS-1", "R-PASS-3")

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 1, 31, 9, 0, tzinfo=UTC)  # month end: exercises the clamping
TICK = dt.timedelta(microseconds=1)


def months(n: int) -> dt.datetime:
    return add_months(T0, n)


def facts(**kw: object) -> AccountFacts:
    base: dict[str, object] = {"state": "active", "created_at": T0}
    base.update(kw)
    return AccountFacts(**base)  # type: ignore[arg-type]


RECENT = {"last_login_at": T0 + dt.timedelta(days=400)}  # keeps inactivity rules out of the way

# (id, profile, facts, now, expected (state, reason) or None)
CASES = [
    # R-LIFE-3 lamdong: 3 months without access since creation or last access → revoked
    ("lamdong-idle-just-before", "lamdong", facts(), months(3) - TICK, None),
    ("lamdong-idle-at-3-months", "lamdong", facts(), months(3), ("revoked", "inactive")),
    ("lamdong-never-logged-in", "lamdong", facts(state="must_change_password"), months(3),
     ("revoked", "inactive")),
    ("lamdong-login-restarts-clock", "lamdong", facts(last_login_at=T0 + dt.timedelta(days=10)),
     months(3), None),
    ("lamdong-reissue-restarts-clock", "lamdong", facts(state="active", reactivated_at=months(4)),
     months(6), None),
    ("lamdong-group-exempt", "lamdong", facts(kind="group"), months(40), None),
    ("lamdong-service-exempt", "lamdong", facts(exempt_from_inactivity=True), months(40), None),
    ("lamdong-already-revoked", "lamdong", facts(state="revoked"), months(40), None),
    ("lamdong-notice-is-operator-work", "lamdong", facts(notice_at=T0, **RECENT), months(2), None),
    # R-LIFE-4 most: 6 months → locked, 12 → revoked; leavers at most 12 months after leaving
    ("most-idle-before-6", "most", facts(), months(6) - TICK, None),
    ("most-idle-at-6", "most", facts(), months(6), ("locked", "inactive")),
    ("most-locked-before-12", "most", facts(state="locked"), months(12) - TICK, None),
    ("most-locked-at-12", "most", facts(state="locked"), months(12), ("revoked", "inactive")),
    ("most-active-at-12-jumps", "most", facts(), months(12), ("revoked", "inactive")),
    ("most-notice-before-6", "most", facts(notice_at=T0, **RECENT), months(6) - TICK, None),
    ("most-notice-at-6", "most", facts(notice_at=T0, **RECENT), months(6), ("revoked", "notice")),
    ("most-left-before-12", "most", facts(left_at=months(1), **RECENT), months(13) - TICK, None),
    ("most-left-at-12", "most", facts(left_at=months(1), **RECENT), months(13),
     ("revoked", "left_without_notice")),
    ("most-former-head-keeps", "most",
     facts(left_at=months(1), notice_at=months(1), keep_after_leaving=True, **RECENT), months(13), None),
    # R-LIFE-2 molisa: revoked 2 days after the written notice; R-PASS-1: change within 24 h
    ("molisa-notice-before-2-days", "molisa", facts(notice_at=T0),
     T0 + dt.timedelta(days=2) - TICK, None),
    ("molisa-notice-at-2-days", "molisa", facts(notice_at=T0), T0 + dt.timedelta(days=2),
     ("revoked", "notice")),
    ("molisa-former-head-flag-does-not-stop-notice", "molisa",
     facts(notice_at=T0, keep_after_leaving=True), T0 + dt.timedelta(days=2), ("revoked", "notice")),
    ("molisa-group-notice", "molisa", facts(kind="group", notice_at=T0), T0 + dt.timedelta(days=2),
     ("revoked", "notice")),
    ("molisa-initial-before-24h", "molisa", facts(state="must_change_password", must_change_since=T0),
     T0 + dt.timedelta(hours=24) - TICK, None),
    ("molisa-initial-at-24h", "molisa", facts(state="must_change_password", must_change_since=T0),
     T0 + dt.timedelta(hours=24), ("locked", "initial_password_not_changed")),
    ("molisa-changed-in-time", "molisa", facts(state="active", must_change_since=T0),
     T0 + dt.timedelta(days=30), None),
    ("molisa-no-idle-rule", "molisa", facts(), months(60), None),
    # R-LIFE-5 hcm-q4: unused 3 months → locked, 6 → deleted
    ("q4-idle-before-3", "hcm-q4", facts(password_changed_at=months(2)), months(3) - TICK, None),
    ("q4-idle-at-3", "hcm-q4", facts(password_changed_at=months(2)), months(3),
     ("locked", "inactive")),
    ("q4-locked-at-6", "hcm-q4", facts(state="locked"), months(6), ("deleted", "inactive")),
    ("q4-locked-before-6", "hcm-q4", facts(state="locked"), months(6) - TICK, None),
    # R-PASS-3 hcm-q4: password every 3 months; first login without change → locked
    ("q4-password-before-3", "hcm-q4", facts(password_changed_at=T0, last_login_at=months(3)),
     months(3) - TICK, None),
    ("q4-password-at-3", "hcm-q4", facts(password_changed_at=T0, last_login_at=months(3)),
     months(3), ("must_change_password", "password_expired")),
    ("q4-first-login-grace", "hcm-q4",
     facts(state="must_change_password", must_change_since=T0, last_login_at=T0 + dt.timedelta(hours=1)),
     T0 + dt.timedelta(hours=2) - TICK, None),
    ("q4-first-login-locked", "hcm-q4",
     facts(state="must_change_password", must_change_since=T0, last_login_at=T0 + dt.timedelta(hours=1)),
     T0 + dt.timedelta(hours=2), ("locked", "initial_password_not_changed")),
    ("q4-not-logged-in-yet", "hcm-q4", facts(state="must_change_password", must_change_since=T0),
     T0 + dt.timedelta(days=30), None),
    ("q4-old-login-before-notice", "hcm-q4",
     facts(state="must_change_password", must_change_since=T0 + dt.timedelta(days=1),
           last_login_at=T0),
     T0 + dt.timedelta(days=30), None),
    ("q4-most-severe-wins", "hcm-q4", facts(state="must_change_password", must_change_since=T0,
                                            last_login_at=T0), months(6), ("deleted", "inactive")),
    # moj, none: no automatic rule; the operator revokes on the unit's request
    ("moj-idle", "moj", facts(), months(60), None),
    ("moj-notice", "moj", facts(notice_at=months(2)), months(40), None),
    ("none-idle", "none", facts(), months(60), None),
]


@pytest.mark.parametrize(
    ("profile", "account", "now", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_r_life_decide_account_state(
    profile: str, account: AccountFacts, now: dt.datetime, expected: tuple[str, str] | None
) -> None:
    """R-LIFE-2..5, R-PASS-1/3: the due transition, exactly at and just before each deadline."""
    transition = decide_account_state(account, RULES_BY_PROFILE[profile], now)
    if expected is None:
        assert transition is None
    else:
        assert transition is not None
        assert (transition.state, transition.reason) == expected
        assert transition.due_at <= now


def test_r_life_3_lamdong_tells_the_unit_except_for_its_own_request() -> None:
    """R-LIFE-3: the unit is notified of an inactivity revocation, not of the one it asked for."""
    rules = replace(RULES_BY_PROFILE["lamdong"], revoke_after_notice_days=0)
    idle = decide_account_state(facts(), rules, months(3))
    asked = decide_account_state(facts(notice_at=T0, **RECENT), rules, T0)
    assert idle is not None and idle.notify_unit
    assert asked is not None and asked.reason == "notice" and not asked.notify_unit


def test_r_life_due_at_is_the_deadline() -> None:
    """The transition reports the deadline that made it due, not the evaluation time."""
    transition = decide_account_state(facts(), RULES_BY_PROFILE["most"], months(7))
    assert transition is not None and transition.due_at == months(6)


def test_r_pass_3_unlock_only_after_five_days() -> None:
    """R-PASS-3: a lock for an unchanged initial password may be lifted 5 days later."""
    rules = RULES_BY_PROFILE["hcm-q4"]
    locked = facts(state="locked", locked_at=T0, lock_reason="initial_password_not_changed")
    assert earliest_unlock_at(locked, rules) == T0 + dt.timedelta(days=5)
    inactive = facts(state="locked", locked_at=T0, lock_reason="inactive")
    assert earliest_unlock_at(inactive, rules) is None
    assert earliest_unlock_at(locked, RULES_BY_PROFILE["molisa"]) is None


def test_r_life_rules_are_tunable_and_frozen() -> None:
    """Rules are frozen dataclasses; a profile can replace one with its own values."""
    rules = LifecycleRules(lock_after_inactive_months=1)
    with pytest.raises(AttributeError):
        rules.lock_after_inactive_months = 2  # type: ignore[misc]
    transition = decide_account_state(facts(), rules, months(1))
    assert transition is not None and transition.state is State.LOCKED


def test_r_life_every_profile_has_rules() -> None:
    """Each profile name of the settings has lifecycle rules."""
    assert set(RULES_BY_PROFILE) == {"molisa", "lamdong", "most", "moj", "hcm-q4", "none"}


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (dt.datetime(2026, 1, 31), 1, dt.datetime(2026, 2, 28)),
        (dt.datetime(2028, 1, 31), 1, dt.datetime(2028, 2, 29)),
        (dt.datetime(2026, 11, 30), 3, dt.datetime(2027, 2, 28)),
        (dt.datetime(2026, 12, 15, 8, 30), 1, dt.datetime(2027, 1, 15, 8, 30)),
        (dt.datetime(2026, 5, 31), 12, dt.datetime(2027, 5, 31)),
        (dt.datetime(2026, 3, 31), -1, dt.datetime(2026, 2, 28)),
    ],
)
def test_r_life_add_months_clamps_to_month_end(start: dt.datetime, n: int, expected: dt.datetime) -> None:
    """Calendar months: same day and time N months later, clamped to the month's last day."""
    assert add_months(start, n) == expected


@pytest.mark.parametrize("profile", sorted(RULES_BY_PROFILE))
def test_r_life_rules_match_the_shipped_yaml_profile(profile: str, tmp_path: Path) -> None:
    """config/profiles/<name>.yaml and RULES_BY_PROFILE say the same thing (no silent drift)."""
    config = tmp_path / "mailserver.yaml"
    config.write_text(f"profile: {profile}\n")
    settings = load_settings(config)
    assert LifecycleRules.from_settings(settings.lifecycle, settings.passwords) == RULES_BY_PROFILE[profile]
