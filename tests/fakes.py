"""A fake of the storage API subset the SMTP front end uses, with injectable failures.

Fakes over mocks (a fake behaves, a mock only replays calls): SMTP tests run the real protocol over
real sockets against this, without a database. Thread-safe like the real store.
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import hashlib
import threading
from dataclasses import dataclass, field
from typing import BinaryIO, Sequence

from quota import Decision, QuotaLimits, decide_attachments, decide_delivery, measure_attachments, smtp_size_limit
from storage.api import Account, AccountKind, AccountState, BlobRef, DeliveryOutcome, DeliveryTarget
from storage.mime import parse
from storage.errors import ErrorKind, StoreError


@dataclass
class Delivered:
    blob: bytes
    account_ids: list[int]
    internaldate: _dt.datetime | None
    quota_limits: dict[int, int | None] = field(default_factory=dict)  # account id → target's limit


@dataclass
class FakeStore:
    domains: set[str] = field(default_factory=lambda: {"example.gov.vn"})
    by_address: dict[str, Account] = field(default_factory=dict)
    delivered: list[Delivered] = field(default_factory=list)
    fail_targets: dict[int, ErrorKind] = field(default_factory=dict)  # account id → outcome error
    raise_on_deliver: StoreError | Exception | None = None
    raise_on_lookup: StoreError | Exception | None = None  # get_account / is_local_domain
    parses: int = 0  # parse_message calls
    given_parsed: int = 0  # put_blob calls that were given a parse
    counts: list[tuple[int, str, int]] = field(default_factory=list)  # usage.count calls
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # The roles of the store SMTP reaches (storage.api.Accounts, Messages): this fake plays both.
    @property
    def accounts(self) -> "FakeStore":
        return self

    @property
    def messages(self) -> "FakeStore":
        return self

    @property
    def usage(self) -> "FakeStore":  # storage.api.Usage: only the day counters SMTP adds to
        return self

    def count(self, account_id: int, fact: str, n: int = 1, at=None) -> None:
        self.counts.append((account_id, fact, n))

    @property
    def sieve(self) -> "FakeStore":  # storage.api.SieveScripts: no account has a filter
        return self

    def peek_holders(self) -> frozenset[int]:
        return frozenset()

    def holders(self) -> frozenset[int]:
        return frozenset()

    def add(self, address: str, state: AccountState = AccountState.ACTIVE, kind: AccountKind = AccountKind.PERSONAL) -> Account:
        account = Account(
            id=len(self.by_address) + 1, address=address.lower(), display_name=address, kind=kind,
            state=state, password_hash=None, created_at=_dt.datetime.now(_dt.timezone.utc),
            password_changed_at=None, last_login_at=None, quota_bytes=None, used_bytes=0, used_messages=0,
        )  # fmt: skip
        self.by_address[account.address] = account
        return account

    def is_local_domain(self, name: str) -> bool:
        if self.raise_on_lookup is not None:
            raise self.raise_on_lookup
        return name.lower() in self.domains

    def peek_account(self, address: str) -> Account | None:
        return None  # no cache: every RCPT asks get_account

    def get_account(self, address: str) -> Account | None:
        if self.raise_on_lookup is not None:
            raise self.raise_on_lookup
        return self.by_address.get(address.lower())

    def get_account_by_id(self, account_id: int) -> Account | None:
        return next((a for a in self.by_address.values() if a.id == account_id), None)

    def parse_message(self, source: bytes | BinaryIO, *, measure: bool = False) -> dict:
        with self._lock:
            self.parses += 1
        return parse(source, measure=measure)

    def put_blob(self, source: bytes | BinaryIO, *, prefix: bytes = b"", parsed: dict | None = None) -> BlobRef:
        with self._lock:
            self.given_parsed += parsed is not None
        body = prefix + (source if isinstance(source, bytes) else source.read())
        return BlobRef(hashlib.sha256(body).hexdigest(), len(body), body, None, {})

    def blob_on_disk(self, size: int) -> bool:
        return False

    def deliver_soon(
        self, blob: BlobRef, targets: Sequence[DeliveryTarget], *, internaldate: _dt.datetime | None = None
    ) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(self.deliver(blob, targets, internaldate=internaldate))
        except BaseException as e:  # noqa: BLE001 - the caller gets it from the future
            future.set_exception(e)
        return future

    def deliver(
        self, blob: BlobRef, targets: Sequence[DeliveryTarget], *, internaldate: _dt.datetime | None = None
    ) -> list[DeliveryOutcome]:
        if self.raise_on_deliver is not None:
            raise self.raise_on_deliver
        outcomes = []
        for t in targets:
            error = self.fail_targets.get(t.account_id)
            outcomes.append(DeliveryOutcome(t.account_id, error is None, error=error and error.value))
        ok = [o.account_id for o in outcomes if o.ok]
        if ok:
            with self._lock:
                limits = {t.account_id: t.quota_limit for t in targets}
                self.delivered.append(Delivered(blob.inline or b"", ok, internaldate, limits))
        return outcomes


@dataclass
class FakeAuth:
    """Stands in for ``mailserver.accounts.auth.Authenticator``: address → password."""

    store: FakeStore
    passwords: dict[str, str] = field(default_factory=dict)

    def authenticate(self, username: str, password: str) -> Account | None:
        account = self.store.accounts.get_account(username)
        if account is None or self.passwords.get(account.address) != password:
            return None
        return account


@dataclass
class FakeGroups:
    """Stands in for the organisation role's group expansion: group id → members, and who may post."""

    members: dict[int, list[Account]] = field(default_factory=dict)
    allowed_senders: dict[int, set[str]] = field(default_factory=dict)  # absent: anyone

    def expand_accounts(self, group: str | int) -> list[Account]:
        return list(self.members.get(int(group), []))

    def may_send_to_group(self, group: str | int, sender_address: str) -> bool:
        allowed = self.allowed_senders.get(int(group))
        return allowed is None or sender_address.lower() in allowed


@dataclass
class FakeQuota:
    """Stands in for ``mailserver.mailboxes.quota.QuotaService`` (smtp.quota.QuotaPolicy) with the
    real pure decisions: account id → limits (``default`` for the others)."""

    default: QuotaLimits = field(default_factory=lambda: QuotaLimits(2 * 1024**3, 20 * 1024**2))
    limits: dict[int, QuotaLimits] = field(default_factory=dict)
    used: dict[int, int] = field(default_factory=dict)  # account id → used bytes (else the Account's)

    def limits_for(self, account: Account) -> QuotaLimits:
        return self.limits.get(account.id, self.default)

    def smtp_size(self) -> int:
        attachment = self.default.attachment_bytes
        return 2**62 if attachment is None else smtp_size_limit(attachment)

    def check_delivery(self, account: Account, size: int, count: int = 1) -> Decision:
        used = self.used.get(account.id, account.used_bytes)
        return decide_delivery(used, account.used_messages, self.limits_for(account), size, count)

    def check_delivery_now(self, account: Account, size: int) -> Decision | None:
        return self.check_delivery(account, size)

    def check_attachments(self, account: Account, total_decoded: int) -> Decision:
        return decide_attachments(total_decoded, self.limits_for(account))

    measure_attachments = staticmethod(measure_attachments)

    def limits_need_store(self) -> bool:
        return False

    def delivery_limit(self, account: Account) -> int | None:
        return self.limits_for(account).mailbox_bytes
