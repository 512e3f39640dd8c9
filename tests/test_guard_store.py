"""The login guard's table through the storage API (store.guard), on each backend, and the guard
itself over a real store: counts shared by two store objects (two processes on PostgreSQL),
expiry, the bound on entries, and the decisions of LoginGuard.attempt (no network here: the
thread and sleep hooks are plain coroutines, the sleeps recorded)."""

from __future__ import annotations

import asyncio

import pytest

from config.settings import Guard
from mailserver.accounts.guard import LoginGuard
from storage.sql import SqlStore


@pytest.fixture
def stores(store_url, tmp_path):
    a = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    b = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    yield a, b
    a.close()
    b.close()


def test_counts_are_shared_expire_and_are_bounded(stores):
    a, b = stores
    assert a.guard.add_failure(["ip:203.0.113.7", "user:an@x"], 1000.0, 3600) == {"ip:203.0.113.7": 1, "user:an@x": 1}
    assert b.guard.add_failure(["ip:203.0.113.7"], 1001.0, 3600) == {"ip:203.0.113.7": 2}  # another process
    assert a.guard.tallies(["ip:203.0.113.7", "user:an@x", "ip:nobody"]) == {"ip:203.0.113.7": (2, 1001.0), "user:an@x": (1, 1000.0)}
    assert a.guard.add_failure(["user:an@x"], 1000.0 + 3600, 3600) == {"user:an@x": 1}  # forgotten, counts again
    assert a.guard.add_failure(["rate:rcpts:1:0"], 1002.0, 3600, count=40) == {"rate:rcpts:1:0": 40}
    assert a.guard.add_failure(["ip:203.0.113.7"], 1003.0, 3600, count=-5) == {"ip:203.0.113.7": 0}  # never below 0
    assert a.guard.tallies(["ip:203.0.113.7"]) == {"ip:203.0.113.7": (0, 1001.0)}  # forgiving keeps the time
    assert a.guard.add_failure(["ip:nobody"], 1003.0, 3600, count=-1) == {"ip:nobody": 0}
    b.guard.clear(["ip:203.0.113.7"])
    assert a.guard.tallies(["ip:203.0.113.7"]) == {}
    for i in range(10):
        a.guard.add_failure([f"ip:198.51.100.{i}"], 2000.0 + i, 3600)
    assert a.guard.prune(older_than=1500.0, max_entries=4) == 8  # rate:rcpts (1002) expired, then the 7 oldest of 11
    left = a.guard.tallies([f"ip:198.51.100.{i}" for i in range(10)] + ["user:an@x"])
    assert sorted(left) == ["ip:198.51.100.7", "ip:198.51.100.8", "ip:198.51.100.9", "user:an@x"]


class Clock:
    def __init__(self) -> None:
        self.now = 50_000.0

    def __call__(self) -> float:
        return self.now


def test_attempt_delays_blocks_and_never_locks_out_the_owner(stores):
    store, _ = stores
    clock = Clock()
    guard = LoginGuard(store, Guard(delay_first=2, delay_max=15, block_after=4, block_seconds=900), clock=clock)
    slept: list[float] = []

    async def thread(fn, *args):
        return fn(*args)

    async def sleep(seconds):
        slept.append(seconds)
        clock.now += seconds

    def login(host, password):
        async def check():
            return ("account", "") if password == "right" else (None, "credentials")

        return asyncio.run(guard.attempt("imap", host, "An@Example.gov.vn", check, thread=thread, sleep=sleep))

    for expected in ([2], [2, 2], [4, 4], [8, 7]):  # before the check (address), after it (account)
        slept.clear()
        assert login("203.0.113.7", "wrong").account is None
        assert slept == expected
    slept.clear()
    refused = login("203.0.113.7", "right")
    # blocked for 900 s from the last failure, counted 7 s ago (before its answer waited): not even checked
    assert refused.refused == 893 and refused.account is None and slept == []
    assert login("2001:db8:1:2::99", "right").account == "account" and slept == []  # the owner elsewhere
    assert login("2001:db8:1:2::98", "wrong").account is None and slept == [15]  # account penalty, 5th failure
    clock.now += 900
    slept.clear()
    assert login("203.0.113.7", "right").account == "account" and slept == [15]  # block over; still delayed once
    assert store.guard.tallies(["ip:203.0.113.7"])["ip:203.0.113.7"][0] == 0  # the owner's own typos, forgiven


def test_logging_in_to_ones_own_account_does_not_clear_guesses_at_anothers(stores):
    store, _ = stores
    clock = Clock()
    guard = LoginGuard(store, Guard(delay_first=2, delay_max=15, block_after=5, block_seconds=900), clock=clock)

    async def thread(fn, *args):
        return fn(*args)

    async def sleep(seconds):
        clock.now += seconds

    def login(user, password):
        async def check():
            return ("account", "") if password == "right" else (None, "credentials")

        return asyncio.run(guard.attempt("imap", "10.9.8.7", user, check, thread=thread, sleep=sleep))

    for _ in range(3):
        login("colleague@x", "guess")
    login("me@x", "typo")
    assert store.guard.tallies(["ip:10.9.8.7"])["ip:10.9.8.7"][0] == 4
    assert login("me@x", "right").account == "account"
    assert store.guard.tallies(["ip:10.9.8.7"])["ip:10.9.8.7"][0] == 3  # only the typo for me@x is forgiven
    login("colleague@x", "guess")
    login("colleague@x", "guess")
    assert login("me@x", "right").refused  # five guesses: blocked, own account or not
