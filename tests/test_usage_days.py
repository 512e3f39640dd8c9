"""Daily counters of the reports (storage/sql/usage_days.py, R-OPS-1/2) on SQLite and PostgreSQL:
counted in memory, written in one batch that adds to the day's row, check hours kept as a
bitmask of local (Vietnam) hours, days split at local midnight, a deleted account's counts dropped."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from storage.api import AccountKind

VN = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def store(store_url, tmp_path):
    from storage.sql.store import SqlStore

    s = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    s.accounts.add_domain("example.gov.vn")
    yield s
    s.close()


def test_counts_add_up_by_local_day_in_batches(store):
    a = store.accounts.create_account("annv@example.gov.vn", "Nguyễn Văn An", None)
    b = store.accounts.create_account("vanthu@example.gov.vn", "Văn thư", None, kind=AccountKind.UNIT)
    morning = dt.datetime(2026, 12, 7, 8, 15, tzinfo=VN)
    store.usage.count(a.id, "login_imap", at=morning)
    store.usage.count(a.id, "checks", at=morning)
    store.usage.count(a.id, "checks", at=morning.replace(hour=14))
    store.usage.count(b.id, "received", 3, at=morning)
    assert store.usage.flush_counts() == 2
    store.usage.count(a.id, "checks", at=morning.replace(hour=16))  # a second batch adds to the row
    store.usage.count(a.id, "sent", at=dt.datetime(2026, 12, 7, 17, 30, tzinfo=dt.UTC))  # 00:30 on the 8th in Vietnam
    store.usage.flush_counts()
    rows = {(r.account_id, r.day): r for r in store.usage.day_facts(dt.date(2026, 12, 1), dt.date(2026, 12, 31))}
    day = rows[(a.id, dt.date(2026, 12, 7))]
    assert (day.login_imap, day.checks, day.sent, day.logins) == (1, 3, 0, 1)
    assert day.check_hours == (1 << 8) | (1 << 14) | (1 << 16)
    assert rows[(a.id, dt.date(2026, 12, 8))].sent == 1
    assert rows[(b.id, dt.date(2026, 12, 7))].received == 3
    assert store.usage.day_facts(dt.date(2026, 12, 8), dt.date(2026, 12, 8), [b.id]) == []


def test_a_deleted_accounts_counts_are_dropped_not_fatal(store):
    a = store.accounts.create_account("annv@example.gov.vn", "Nguyễn Văn An", None)
    store.usage.count(a.id, "login_web")
    store.accounts.delete_account(a.id)
    store.usage.flush_counts()
    assert store.usage.day_facts(dt.date(2000, 1, 1), dt.date(2100, 1, 1)) == []


def test_counters_older_than_the_kept_years_are_pruned(store):
    from mailserver.announcements.schedule import prune_counters

    a = store.accounts.create_account("annv@example.gov.vn", "Nguyễn Văn An", None)
    for day in (dt.date(2020, 12, 6), dt.date(2021, 12, 7), dt.date(2026, 12, 7)):
        store.usage.count(a.id, "checks", at=dt.datetime.combine(day, dt.time(9), VN))
    store.usage.flush_counts()
    assert prune_counters(store, 5, today=dt.date(2026, 12, 7)) == 1
    assert [r.day.year for r in store.usage.day_facts(dt.date(2000, 1, 1), dt.date(2100, 1, 1))] == [2021, 2026]
