"""The lifecycle role (store.lifecycle) on SQLite and PostgreSQL: the facts the policy decides on are derived right
(R-LIFE-3..5, R-PASS-1/3), and state changes are compare-and-set with an audit entry."""

from __future__ import annotations

import datetime as dt

import pytest

from storage.api import AccountKind, AccountState
from storage.api import JOB, PASSWORD_EXPIRED
from storage.sql import SqlStore

DOMAIN = "example.gov.vn"
T = dt.datetime(2027, 3, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(store_url, tmp_path):
    s = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    s.accounts.add_domain(DOMAIN)
    yield s
    s.close()


def test_a_lost_race_changes_nothing_and_records_nothing(store):
    a = store.accounts.create_account(f"annv@{DOMAIN}", "Nguyễn Văn An", "x", state=AccountState.ACTIVE)
    lc = store.lifecycle
    assert not lc.change_state(a.id, AccountState.LOCKED, AccountState.REVOKED, "inactive", now=T, actor=JOB)
    assert store.accounts.get_account_by_id(a.id).state is AccountState.ACTIVE
    assert store.org.audit_log(a.id) == []
    assert lc.change_state(a.id, AccountState.ACTIVE, AccountState.REVOKED, "inactive", now=T, actor=JOB,
                           detail="reason=inactive")
    [entry] = store.org.audit_log(a.id)
    assert (entry.actor, entry.action, entry.detail) == (JOB, "revoked", "reason=inactive")


def test_an_expired_password_is_not_an_initial_one_until_the_operator_resets_it(store):
    a = store.accounts.create_account(f"annv@{DOMAIN}", "Nguyễn Văn An", "x", state=AccountState.ACTIVE)
    lc = store.lifecycle
    lc.change_state(a.id, AccountState.ACTIVE, AccountState.MUST_CHANGE_PASSWORD, PASSWORD_EXPIRED,
                    now=dt.datetime.now(dt.UTC), actor=JOB)
    assert lc.record(a.id).facts.must_change_since is None  # R-PASS-3: no first-login lock for it
    store.accounts.set_password(a.id, "y", state=AccountState.MUST_CHANGE_PASSWORD)  # `account passwd`
    after = store.accounts.get_account_by_id(a.id)
    assert lc.record(a.id).facts.must_change_since == after.password_changed_at


def test_a_lock_reason_is_forgotten_once_the_state_changes_elsewhere(store):
    a = store.accounts.create_account(f"annv@{DOMAIN}", "Nguyễn Văn An", "x")
    lc = store.lifecycle
    lc.change_state(a.id, AccountState.MUST_CHANGE_PASSWORD, AccountState.LOCKED, "initial_password_not_changed",
                    now=T, actor=JOB)
    facts = lc.record(a.id).facts
    assert (facts.locked_at, facts.lock_reason) == (T, "initial_password_not_changed")
    lc.change_state(a.id, AccountState.LOCKED, AccountState.ACTIVE, "unlocked", now=T, reactivate=True)
    store.accounts.set_state(a.id, AccountState.LOCKED)  # locked again by another path, for another reason
    facts = lc.record(a.id).facts
    assert (facts.locked_at, facts.lock_reason) == (None, None)


def test_a_unit_mailbox_is_accessed_when_its_head_logs_in_or_a_delegate_uses_it(store):
    org = store.org
    head = store.accounts.create_account(f"binhtt@{DOMAIN}", "Trần Thị Bình", "x", state=AccountState.ACTIVE)
    staff = store.accounts.create_account(f"annv@{DOMAIN}", "Nguyễn Văn An", "x", state=AccountState.ACTIVE)
    unit = org.add_unit("Văn phòng", "vp", f"vanphong@{DOMAIN}", "x", head_account_id=head.id)
    lc = store.lifecycle
    assert lc.record(unit.account.id).facts.last_login_at is None
    before = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
    store.accounts.record_login(head.id, before)
    assert lc.record(unit.account.id).facts.last_login_at == before
    org.delegate(unit.account.id, staff.id, frozenset(org_rights("read")))
    org.record_access(staff.id, unit.account.id, "select")
    latest = lc.record(unit.account.id).facts.last_login_at
    assert latest > before and latest == {r.account.id: r for r in lc.records()}[unit.account.id].facts.last_login_at
    name, people = lc.unit_contacts(staff.id)
    assert (name, people) == (None, [])  # not in the unit's directory entry
    org.set_profile(staff.id, unit_id=unit.id)
    name, people = lc.unit_contacts(staff.id)
    assert name == "Văn phòng" and [p.address for p in people] == [unit.account.address, head.address]
    assert [p.address for p in lc.unit_contacts(unit.account.id)[1]] == [head.address]
    assert unit.account.kind is AccountKind.UNIT


def org_rights(text: str):
    from storage.api import parse_rights

    return parse_rights(text)
