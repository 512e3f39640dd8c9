"""The recipient cache behind ``Store.peek_account`` (storage/recipients.py): SMTP RCPT answers
from memory only what nothing committed since could have changed."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from storage.api import AccountState, DeliveryTarget
from storage.recipients import MAX_ENTRIES, RecipientCache
from storage.sql import SqlStore

MSG = b"From: a@other.gov.vn\r\nSubject: x\r\n\r\nbody\r\n"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _account(i: int = 1, **changes):
    import datetime as dt

    from storage.api import Account, AccountKind

    fields = dict(id=i, address=f"u{i}@example.gov.vn", display_name="U", kind=AccountKind.PERSONAL,
                  state=AccountState.ACTIVE, password_hash=None, created_at=dt.datetime(2026, 1, 1),
                  password_changed_at=None, last_login_at=None, quota_bytes=None, used_bytes=10, used_messages=1)  # fmt: skip
    return Account(**{**fields, **changes})


# -- the cache itself --------------------------------------------------------------------------
def test_an_entry_lives_for_its_ttl():
    clock = Clock()
    cache = RecipientCache(10, clock)
    cache.put("u1@example.gov.vn", _account(), cache.generation)
    assert cache.get("u1@example.gov.vn").id == 1
    clock.now += 9.9
    assert cache.get("u1@example.gov.vn") is not None
    clock.now += 0.2
    assert cache.get("u1@example.gov.vn") is None


def test_an_answer_read_before_a_change_is_not_stored():
    cache = RecipientCache(10)
    started = cache.generation  # a look-up begins
    cache.clear()  # a commit lands while it reads
    cache.put("u1@example.gov.vn", _account(), started)
    assert cache.get("u1@example.gov.vn") is None
    started = cache.generation
    cache.charge({1: (5, 1)})  # a delivery too: the answer may lack its size
    cache.put("u1@example.gov.vn", _account(), started)
    assert cache.get("u1@example.gov.vn") is None


def test_deliveries_add_to_the_cached_usage_of_every_address_of_the_account():
    cache = RecipientCache(10)
    cache.put("u1@example.gov.vn", _account(), cache.generation)
    cache.put("alias@example.gov.vn", _account(), cache.generation)
    cache.put("u2@example.gov.vn", _account(2), cache.generation)
    cache.charge({1: (1000, 2)})
    for address in ("u1@example.gov.vn", "alias@example.gov.vn"):
        assert (cache.get(address).used_bytes, cache.get(address).used_messages) == (1010, 3)
    assert cache.get("u2@example.gov.vn").used_bytes == 10


def test_a_full_cache_starts_again():
    cache = RecipientCache(10)
    for i in range(MAX_ENTRIES):
        cache.put(f"u{i}@example.gov.vn", _account(i), cache.generation)
    cache.put("last@example.gov.vn", _account(), cache.generation)
    assert len(cache) == 1 and cache.get("last@example.gov.vn") is not None


# -- kept by the SQLite store ---------------------------------------------------------------------
@pytest.fixture
def sqlite_store(tmp_path):
    from storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    store = SqlStore(url, blob_dir=tmp_path / "blobs")
    store.accounts.add_domain("example.gov.vn")
    yield store
    store.close()


def _wait_for(predicate, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "not within the timeout"
        time.sleep(0.005)
    return time.monotonic() - start


def test_a_looked_up_recipient_is_known_without_the_database(sqlite_store):
    created = sqlite_store.accounts.create_account("annv@example.gov.vn", "An", None, state=AccountState.ACTIVE)
    assert sqlite_store.accounts.peek_account("annv@example.gov.vn") is None  # not looked up yet
    assert sqlite_store.accounts.peek_account("nobody@example.gov.vn") is None
    assert sqlite_store.accounts.get_account("AnNV@Example.gov.vn").id == created.id
    assert sqlite_store.accounts.peek_account("annv@example.gov.vn").id == created.id
    assert sqlite_store.accounts.peek_account("ANNV@example.gov.vn.").id == created.id
    assert sqlite_store.accounts.peek_account("not an address") is None


def test_a_change_committed_here_clears_it_before_the_caller_returns(sqlite_store):
    account = sqlite_store.accounts.create_account("annv@example.gov.vn", "An", None, state=AccountState.ACTIVE)
    sqlite_store.accounts.get_account("annv@example.gov.vn")
    sqlite_store.accounts.set_state(account.id, AccountState.REVOKED)
    assert sqlite_store.accounts.peek_account("annv@example.gov.vn") is None
    assert sqlite_store.accounts.get_account("annv@example.gov.vn").state == AccountState.REVOKED


def test_a_delivery_here_updates_the_cached_usage(sqlite_store):
    account = sqlite_store.accounts.create_account("annv@example.gov.vn", "An", None, state=AccountState.ACTIVE)
    sqlite_store.accounts.get_account("annv@example.gov.vn")
    blob = sqlite_store.messages.put_blob(MSG)
    sqlite_store.messages.deliver(blob, [DeliveryTarget(account.id)])
    cached = sqlite_store.accounts.peek_account("annv@example.gov.vn")
    assert (cached.used_bytes, cached.used_messages) == (len(MSG), 1)
    assert cached == sqlite_store.accounts.get_account("annv@example.gov.vn")
    sqlite_store.search.index_pending()  # search upkeep changes no account: the entry stays
    assert sqlite_store.accounts.peek_account("annv@example.gov.vn") == cached


def test_a_change_committed_by_another_process_clears_it(sqlite_store, tmp_path):
    """An operator's command in another process: the next peek sees SQLite's data_version move
    and asks the database; the idle writer clears the cache within 50 ms and vouches anew."""
    sqlite_store.accounts.create_account("annv@example.gov.vn", "An", None, state=AccountState.ACTIVE)
    sqlite_store.accounts.get_account("annv@example.gov.vn")
    # served from the cache once the writer has looked at data_version since the look-up
    _wait_for(lambda: sqlite_store.accounts.peek_account("annv@example.gov.vn") is not None)
    script = (
        "import sys; from storage.sql import SqlStore; from storage.api import AccountState;"
        f"s = SqlStore({sqlite_store.url!r}, blob_dir=sys.argv[1]);"
        "a = s.accounts.get_account('annv@example.gov.vn'); s.accounts.set_state(a.id, AccountState.LOCKED); s.close()"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "blobs")], check=True, timeout=60)
    assert sqlite_store.accounts.peek_account("annv@example.gov.vn") is None  # at once: data_version moved
    assert _wait_for(lambda: len(sqlite_store.core._recipients) == 0) < 0.5  # the idle writer cleared it
    assert sqlite_store.accounts.get_account("annv@example.gov.vn").state == AccountState.LOCKED
    _wait_for(lambda: sqlite_store.accounts.peek_account("annv@example.gov.vn") is not None)  # vouched for again
    assert sqlite_store.accounts.peek_account("annv@example.gov.vn").state == AccountState.LOCKED


def test_only_the_sqlite_store_keeps_a_cache(store_url, tmp_path):
    """PostgreSQL serves several processes whose commits this writer does not see: no cache."""
    store = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    try:
        store.accounts.add_domain("example.gov.vn")
        store.accounts.create_account("annv@example.gov.vn", "An", None, state=AccountState.ACTIVE)
        assert store.accounts.get_account("annv@example.gov.vn") is not None
        assert (store.accounts.peek_account("annv@example.gov.vn") is not None) == store.is_sqlite
    finally:
        store.close()


def test_a_closed_store_peeks_nothing(tmp_path):
    from storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    store = SqlStore(url, blob_dir=tmp_path / "blobs")
    store.accounts.add_domain("example.gov.vn")
    store.accounts.create_account("annv@example.gov.vn", "An", None, state=AccountState.ACTIVE)
    store.accounts.get_account("annv@example.gov.vn")
    store.close()
    assert store.accounts.peek_account("annv@example.gov.vn") is None  # no error from the closed connection
