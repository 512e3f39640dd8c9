"""The Sieve role of the store (storage/sql/sieve.py) on SQLite and PostgreSQL: scripts, the one
active script, forwarding, the once-per-period vacation record; and ``peek_holders``, which lets
delivery skip the filters' thread hand-off only while no commit could have changed the answer."""

from __future__ import annotations

import pytest

from storage.api import AccountState, Forward
from storage.errors import Exists, Invalid, NotFound
from storage.sql import SqlStore
from tests.conftest import wait_until


@pytest.fixture
def store(store_url, tmp_path):
    s = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    s.accounts.add_domain("example.gov.vn")
    yield s
    s.close()


def account(store, local: str) -> int:
    return store.accounts.create_account(f"{local}@example.gov.vn", "Nguyễn Văn An", "x", state=AccountState.ACTIVE).id


def test_scripts_one_active_rename_delete(store):
    a = account(store, "an")
    store.sieve.put_script(a, "một", "keep;")
    store.sieve.put_script(a, "hai", "discard;")
    store.sieve.set_active(a, "một")
    store.sieve.set_active(a, "hai")
    assert [(s.name, s.active) for s in store.sieve.list_scripts(a)] == [("hai", True), ("một", False)]
    assert store.sieve.active_scripts([a]) == {a: ("hai", "discard;")}
    with pytest.raises(Invalid):
        store.sieve.delete_script(a, "hai")  # active (RFC 5804 2.10)
    with pytest.raises(Exists):
        store.sieve.rename_script(a, "một", "hai")
    store.sieve.rename_script(a, "hai", "ba")
    assert store.sieve.active_scripts([a]) == {a: ("ba", "discard;")}
    store.sieve.put_script(a, "ba", "keep;")  # replacing keeps it active
    assert store.sieve.active_scripts([a]) == {a: ("ba", "keep;")}
    with pytest.raises(NotFound):
        store.sieve.set_active(a, "không có")
    store.sieve.set_active(a, None)
    store.sieve.delete_script(a, "ba")
    assert store.sieve.get_script(a, "ba") is None and store.sieve.active_scripts([a]) == {}


def test_forward_set_and_cleared(store):
    a = account(store, "binh")
    store.sieve.set_forward(a, Forward(("x@other.gov.vn", "y@other.gov.vn"), keep=False))
    assert store.sieve.forwards([a]) == {a: Forward(("x@other.gov.vn", "y@other.gov.vn"), False)}
    assert a in store.sieve.holders()
    store.sieve.set_forward(a, None)
    assert store.sieve.forwards([a]) == {} and a not in store.sieve.holders()


def test_vacation_due_once_per_period_and_handle(store):
    a = account(store, "cuong")
    assert store.sieve.vacation_due(a, "Khach@Other.gov.vn", "h1", 1000.0, 86400)
    assert not store.sieve.vacation_due(a, "khach@other.gov.vn", "h1", 1000.0 + 86399, 86400)
    assert store.sieve.vacation_due(a, "khach@other.gov.vn", "h2", 1001.0, 86400)  # another reply text
    assert store.sieve.vacation_due(a, "khach@other.gov.vn", "h1", 1000.0 + 86400, 86400)


def test_peek_holders_is_served_only_until_a_change(store, store_url, tmp_path):
    a = account(store, "dung")
    if not store.is_sqlite:
        assert store.sieve.peek_holders() is None  # several processes: always asked in a thread
        return
    assert store.sieve.holders() == frozenset()
    wait_until(lambda: store.sieve.peek_holders() == frozenset(), what="served without a query")
    store.sieve.put_script(a, "loc", "keep;")
    store.sieve.set_active(a, "loc")
    assert store.sieve.peek_holders() is None  # our own change
    assert store.sieve.holders() == {a}
    wait_until(lambda: store.sieve.peek_holders() == {a}, what="served again")
    other = SqlStore(store_url, blob_dir=tmp_path / "blobs")  # another process: the operator's CLI
    try:
        other.sieve.set_active(a, None)
    finally:
        other.close()
    wait_until(lambda: store.sieve.peek_holders() is None, what="a commit by another connection noticed")
    assert store.sieve.holders() == frozenset()
