"""Each regulation's profile from a staff member's first day to the last, on an injected clock
(``now=`` of the lifecycle run; nothing sleeps): the address from the person's name by the
profile's rule, the initial password and its change, the mailbox and attachment limits, the
password's age, inactivity, lock, revoke and delete — every deadline checked at its exact
second and one second before, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest

from mailserver.accounts.lifecycle import run_lifecycle, unlock_refusal
from mailserver.compliance.matrix import profile_settings
from mailserver.policy.addresses import derive_local_part
from mailserver.policy.lifecycle import add_months
from mailserver.policy.passwords import check_password
from quota.decide import QuotaLimits, decide_attachments, decide_delivery
from storage.api import AccountState
from storage.sql import SqlStore

SECOND = dt.timedelta(seconds=1)
NAME = "Nguyễn Văn An"
WEAK, STRONG = "matkhau123", "Mật-khẩu-2027"  # 2 classes; all 4


@pytest.fixture
def store(store_url, tmp_path):
    s = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    yield s
    s.close()


def settings_of(profile: str, **lifecycle):
    own = profile_settings(profile)
    return own.model_copy(update={"lifecycle": own.lifecycle.model_copy(update=lifecycle)}) if lifecycle else own


def state(store, account) -> AccountState:
    return store.accounts.get_account_by_id(account.id).state


def step(store, settings, account, due: dt.datetime, before: AccountState, after: AccountState) -> None:
    """Nothing at ``due`` - 1 s; the change at ``due`` exactly."""
    assert [c for c in run_lifecycle(store, settings, dry_run=False, now=due - SECOND) if c.address == account.address] == []
    assert state(store, account) is before
    [change] = [c for c in run_lifecycle(store, settings, dry_run=False, now=due) if c.address == account.address]
    assert (change.after, state(store, account)) == (after.value, after)


def first_day(store, settings, expected_address: str):
    """Created from the name by the profile's rule; the initial password must be changed."""
    domain = settings.domains[0]
    store.accounts.add_domain(domain)
    local = derive_local_part(NAME, (), settings.address_rule)
    assert f"{local}@{domain}" == expected_address  # R-ADDR-*
    account = store.accounts.create_account(expected_address, NAME, "initial-hash")
    assert account.state is AccountState.MUST_CHANGE_PASSWORD  # R-PASS-1
    p = settings.passwords
    assert check_password(WEAK, account_name=expected_address, min_length=p.min_length, min_classes=p.min_classes)
    assert not check_password(STRONG, account_name=expected_address, min_length=p.min_length, min_classes=p.min_classes)
    return account


def limits_hold(settings) -> None:
    """R-QUOTA-1: exactly the limit fits, one byte more does not."""
    limits = QuotaLimits(settings.quota.mailbox, settings.quota.attachment)
    assert decide_delivery(limits.mailbox_bytes - 1000, 10, limits, 1000).ok
    assert decide_delivery(limits.mailbox_bytes - 1000, 10, limits, 1001).reason == "mailbox_full"
    assert decide_attachments(limits.attachment_bytes, limits).ok
    assert decide_attachments(limits.attachment_bytes + 1, limits).reason == "attachments_too_big"


def change_password(store, account, when: dt.datetime) -> None:
    store.accounts.set_password(account.id, "changed-hash", state=AccountState.ACTIVE)
    store.accounts.record_login(account.id, when)


@pytest.mark.requirement("R-ADDR-1", "R-PASS-1", "R-LIFE-2")
def test_molisa_first_day_to_last(store):
    settings = settings_of("molisa")
    a = first_day(store, settings, "annv@molisa.gov.vn")
    limits_hold(settings)  # the built-in 2 GiB / 20 MiB
    created = store.accounts.get_account_by_id(a.id).created_at
    step(store, settings, a, created + dt.timedelta(hours=24), AccountState.MUST_CHANGE_PASSWORD, AccountState.LOCKED)
    store.accounts.set_state(a.id, AccountState.ACTIVE)  # the operator reopens; the user changes it
    change_password(store, a, created + dt.timedelta(days=2))
    # No inactivity rule and no password age in Decision 935: ten years later nothing happens.
    assert [c for c in run_lifecycle(store, settings, dry_run=False, now=add_months(created, 120))] == []
    notice = created + dt.timedelta(days=30)
    store.lifecycle.set_leaving(a.id, notice_at=notice, left_at=None, keep=False)
    step(store, settings, a, notice + dt.timedelta(days=2), AccountState.ACTIVE, AccountState.REVOKED)
    store.accounts.delete_account(a.id)
    assert store.accounts.get_account(a.address) is None


@pytest.mark.requirement("R-ADDR-2", "R-QUOTA-1", "R-LIFE-3")
def test_lamdong_first_day_to_last(store):
    settings = settings_of("lamdong")
    a = first_day(store, settings, "annv@lamdong.gov.vn")
    limits_hold(settings)
    assert settings.quota.mailbox == 2 * 1024**3 and settings.quota.attachment == 20 * 1024**2
    created = store.accounts.get_account_by_id(a.id).created_at
    first_login = created + dt.timedelta(hours=2)
    change_password(store, a, first_login)
    step(store, settings, a, add_months(first_login, 3), AccountState.ACTIVE, AccountState.REVOKED)
    store.accounts.delete_account(a.id)
    assert store.accounts.get_account(a.address) is None


@pytest.mark.requirement("R-PASS-2", "R-LIFE-4")
def test_most_first_day_to_last(store):
    settings = settings_of("most")
    a = first_day(store, settings, "annv@most.gov.vn")
    assert check_password("annv@most.gov.vn", account_name="annv@most.gov.vn", min_length=8, min_classes=1)
    limits_hold(settings)
    created = store.accounts.get_account_by_id(a.id).created_at
    last_login = created + dt.timedelta(days=3)
    change_password(store, a, last_login)
    step(store, settings, a, add_months(last_login, 6), AccountState.ACTIVE, AccountState.LOCKED)
    step(store, settings, a, add_months(last_login, 12), AccountState.LOCKED, AccountState.REVOKED)
    store.accounts.delete_account(a.id)
    assert store.accounts.get_account(a.address) is None


@pytest.mark.requirement("R-PASS-1", "R-LIFE-1")
def test_moj_first_day_to_last(store):
    settings = settings_of("moj")
    a = first_day(store, settings, "annv@moj.gov.vn")
    limits_hold(settings)
    created = store.accounts.get_account_by_id(a.id).created_at
    change_password(store, a, created + dt.timedelta(hours=1))
    # Decision 290 sets no deadline of its own: the account lives until the unit asks otherwise.
    assert run_lifecycle(store, settings, dry_run=False, now=add_months(created, 120)) == []
    assert state(store, a) is AccountState.ACTIVE
    store.accounts.set_state(a.id, AccountState.REVOKED)  # `account revoke` on the unit's request
    store.accounts.delete_account(a.id)
    assert store.accounts.get_account(a.address) is None


@pytest.mark.requirement("R-ADDR-3", "R-QUOTA-1", "R-PASS-3", "R-LIFE-5")
def test_hcm_q4_first_day_to_last(store):
    settings = settings_of("hcm-q4")
    a = first_day(store, settings, "annv.q4@tphcm.gov.vn")
    assert check_password("Matkhau-dai", account_name=a.address, min_length=8, min_classes=4)  # 3 classes: refused
    limits_hold(settings)
    assert settings.quota.mailbox == 1024**3 and settings.quota.attachment == 15 * 1024**2
    created = store.accounts.get_account_by_id(a.id).created_at
    # First login a day later, initial password kept: locked one hour after it.
    first_login = created + dt.timedelta(days=1)
    store.accounts.record_login(a.id, first_login)
    grace = first_login + dt.timedelta(hours=1)
    step(store, settings, a, grace, AccountState.MUST_CHANGE_PASSWORD, AccountState.LOCKED)
    assert unlock_refusal(store, settings, a.id, grace + dt.timedelta(days=5) - SECOND) is not None
    assert unlock_refusal(store, settings, a.id, grace + dt.timedelta(days=5)) is None
    store.lifecycle.change_state(a.id, AccountState.LOCKED, AccountState.MUST_CHANGE_PASSWORD, "unlocked",
                                 now=grace + dt.timedelta(days=5), reactivate=True)
    changed = grace + dt.timedelta(days=5, hours=1)
    change_password(store, a, changed)
    password_age = store.accounts.get_account_by_id(a.id).password_changed_at
    # Every 3 months a new password (art. 8.3b): due before the inactivity deadline below.
    step(store, settings, a, add_months(password_age, 3), AccountState.ACTIVE, AccountState.MUST_CHANGE_PASSWORD)
    # Then unused since that last login: locked at 3 months, deleted at 6 (art. 8.1).
    step(store, settings, a, add_months(changed, 3), AccountState.MUST_CHANGE_PASSWORD, AccountState.LOCKED)
    step(store, settings, a, add_months(changed, 6), AccountState.LOCKED, AccountState.DELETED)
    store.accounts.delete_account(a.id)
    assert store.accounts.get_account(a.address) is None
