"""smtp/sieve_delivery.py: a script's keep follows the content checks' folder (Junk), its fileinto
does not; rejection by every recipient is answered in the SMTP dialogue; spam gets no vacation
reply (``smtp.delivery.deliver`` on a real store, SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as _dt
import io

import pytest

from config.sieve import Sieve as SieveSettings
from sieve.interpret import Result
from smtp import delivery
from smtp.sieve_delivery import Decision, Plan, SieveDelivery
from storage.api import Account, AccountKind, AccountState
from storage.sql import SqlStore


def account(i: int) -> Account:
    return Account(id=i, address=f"u{i}@example.gov.vn", display_name="U", kind=AccountKind.PERSONAL,
                   state=AccountState.ACTIVE, password_hash=None, created_at=_dt.datetime.now(_dt.timezone.utc),
                   password_changed_at=None, last_login_at=None, quota_bytes=None, used_bytes=0, used_messages=0)


def test_keep_goes_to_the_folder_the_content_checks_chose_fileinto_stays():
    a = account(1)
    plan = Plan({1: Decision(a, [("INBOX", frozenset({"\\Seen"})), ("Reports", frozenset())], Result())})
    targets = plan.targets(a, "Junk", 1000)
    assert [(t.folder, t.flags, t.quota_limit) for t in targets] == [("Junk", frozenset({"\\Seen"}), 1000), ("Reports", frozenset(), 1000)]
    assert plan.targets(account(2), "Junk", None) is None  # no script: the default target


def test_all_rejected_only_when_every_recipient_rejected_and_nothing_else():
    a, b = account(1), account(2)
    rejected = Decision(a, [], Result(reject="không"))
    assert Plan({1: rejected}).all_rejected([a])
    assert not Plan({1: rejected}).all_rejected([a, b])  # b has no script: it takes the message
    with_vacation = Decision(a, [], Result(reject="x", vacation=object()))  # type: ignore[arg-type]
    assert not Plan({1: with_vacation}).all_rejected([a])


# -- through smtp.delivery.deliver on a real store (both databases) ----------------------------


@pytest.fixture
def store(store_url, tmp_path):
    s = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    s.accounts.add_domain("example.gov.vn")
    yield s
    s.close()


async def test_spam_filed_into_junk_keeps_there_and_gets_no_vacation_reply(store):
    owner = store.accounts.create_account("vang@example.gov.vn", "V", "x", state=AccountState.ACTIVE)
    sender = store.accounts.create_account("khach@example.gov.vn", "K", "x", state=AccountState.ACTIVE)
    store.sieve.put_script(owner.id, "v", 'require "vacation"; vacation "Tôi nghỉ.";')
    store.sieve.set_active(owner.id, "v")
    sieve = SieveDelivery(SieveSettings(), ["example.gov.vn"], "mx.example.gov.vn")
    raw = b"From: khach@example.gov.vn\r\nTo: vang@example.gov.vn\r\nSubject: s\r\n\r\nx\r\n"

    def count(account_id: int, name: str) -> int:
        return store.folders.folder_status(store.folders.get_folder(account_id, name).id).messages

    for folder, tx in (("Junk", "t1"), ("INBOX", "t2")):
        message = delivery.Message(io.BytesIO(raw), b"", len(raw), [owner], folder=folder)
        reply = await delivery.deliver(store, message, tx_id=tx, sender="khach@example.gov.vn", hostname="mx", sieve=sieve)
        assert reply.startswith("250")
        if folder == "Junk":
            assert count(owner.id, "Junk") == 1 and count(sender.id, "INBOX") == 0  # spam: no reply
    assert count(owner.id, "INBOX") == 1 and count(sender.id, "INBOX") == 1  # not spam: one reply
