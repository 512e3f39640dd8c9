"""Quota for the running server (R-QUOTA-1): each account's limits, the figures front
ends need, and the threshold watcher that warns owners as their mailbox fills.

Limits are resolved in layers (``quota.resolve_limits``), lowest first:
1. the profile's default: ``settings.quota.mailbox`` / ``attachment`` (the profile file and the
   operator's YAML are already merged into them by config.loader);
2. the account's class, else its unit's, else the nearest parent unit's: a ``quota.classes``
   entry named by ``mailserver quota class`` (storage.api.Usage.class_for);
3. the account's own override ``accounts.quota_bytes`` (``mailserver quota set ADDRESS 5GB``).

Front ends (smtp/, imap/) may not import this module (docs/architecture.md, section 1): app.py builds one
``QuotaService`` and hands its bound methods to them. Every method may block on the database:
call it off the event loop, as any store method.
"""

from __future__ import annotations

import datetime as _dt
import logging
import queue
import threading
import time
from typing import Callable

from config.settings import Settings
from quota import Decision, QuotaLimits, decide_attachments, decide_delivery, measure_attachments, resolve_limits
from quota.decide import smtp_size_limit
from storage.api import RECEIVE_STATES, Account, AccountKind, DeliveryTarget, FolderChange
from storage.sql import SqlStore

log = logging.getLogger(__name__)

#: seconds the threshold watcher waits after a commit before it looks (ThresholdWatcher._run)
_SETTLE_S = 0.25


class QuotaService:
    def __init__(self, settings: Settings, store: SqlStore) -> None:
        self.settings = settings
        self.store = store
        self.usage = store.usage
        self._watcher: ThresholdWatcher | None = None

    # -- limits ---------------------------------------------------------------------------------
    def profile_limits(self) -> QuotaLimits:
        return QuotaLimits(self.settings.quota.mailbox, self.settings.quota.attachment)

    def limits_for(self, account: Account) -> QuotaLimits:
        """The effective limits of ``account`` (profile → class → account override)."""
        unit_class = None
        # No classes configured (the common case): no database look-up per recipient.
        name = self.usage.class_for(account.id) if self.settings.quota.classes else None
        if name is not None:
            quota_class = self.settings.quota.classes.get(name)
            if quota_class is None:
                log.warning("account %s: quota class %r is not in quota.classes; profile limits apply",
                            account.address, name)
            else:
                unit_class = quota_class.layer()
        override = None if account.quota_bytes is None else {"mailbox_bytes": account.quota_bytes}
        return resolve_limits(self.profile_limits(), unit_class, override)

    def delivery_limit(self, account: Account) -> int | None:
        """``DeliveryTarget.quota_limit`` / ``append(quota_limit=)`` / ``copy(quota_limit=)``."""
        return self.limits_for(account).mailbox_bytes

    def check_delivery(self, account: Account, size: int, count: int = 1) -> Decision:
        """Early check (SMTP RCPT with the declared SIZE, IMAP APPEND before the literal) on the
        usage as last committed; the commit checks again (``quota_limit``), so races are safe."""
        return decide_delivery(account.used_bytes, account.used_messages, self.limits_for(account), size, count)

    def limits_need_store(self) -> bool:
        """Whether ``limits_for`` reads the database: only with ``quota.classes`` configured."""
        return bool(self.settings.quota.classes)

    def check_delivery_now(self, account: Account, size: int) -> Decision | None:
        """``check_delivery`` on the caller's thread when the limits need no database (no
        ``quota.classes`` configured, the common case), else None. SMTP RCPT uses it to save a
        thread hand-off per recipient."""
        if self.limits_need_store():
            return None
        return self.check_delivery(account, size)

    def check_attachments(self, account: Account, total_decoded: int) -> Decision:
        """After DATA: ``quota.measure_attachments(part tree).total_decoded_bytes`` against the
        recipient's attachment limit."""
        return decide_attachments(total_decoded, self.limits_for(account))

    def smtp_size(self) -> int:
        """The SIZE to advertise (RFC 1870): the profile's attachment limit in base64 plus room
        for headers and text, capped by ``limits.max_message_size``."""
        cap = self.settings.limits.max_message_size
        classes = self.settings.quota.classes.values()
        limits = [self.settings.quota.attachment] + [c.attachment for c in classes if "attachment" in c.model_fields_set]
        if None in limits:
            return cap
        return min(cap, smtp_size_limit(max(limits)))

    def imap_quota(self, account: Account) -> list[tuple[str, int, int]]:
        """RFC 9208 resources of the account's one quota root ``""``: (name, usage, limit) with
        STORAGE in units of 1024 octets (usage rounded up, limit down); unlimited ones left out."""
        limits = self.limits_for(account)
        resources = []
        if limits.mailbox_bytes is not None:
            resources.append(("STORAGE", -(-account.used_bytes // 1024), limits.mailbox_bytes // 1024))
        if limits.messages is not None:
            resources.append(("MESSAGE", account.used_messages, limits.messages))
        return resources

    measure_attachments = staticmethod(measure_attachments)

    # -- warnings -------------------------------------------------------------------------------
    def start_watcher(self) -> ThresholdWatcher:
        if self._watcher is None:
            self._watcher = ThresholdWatcher(self)
            self._watcher.start()
        return self._watcher

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None


def level(used: int, limit: int | None, thresholds: tuple[int, ...]) -> int:
    """Highest threshold (percent) that ``used`` has reached; 0 when none (or unlimited)."""
    if limit is None or limit <= 0:
        return 0
    return max((t for t in thresholds if used * 100 >= t * limit), default=0)


class ThresholdWatcher:
    """Sends one notice per threshold crossing (``quota.thresholds``, default 80/90/100 %).

    The store calls ``_on_commit`` in its writer (or notification) thread, which must not call
    the store: it only queues account ids. A worker thread of our own then compares each
    account's level with the last one notified (``quota_state.notified_percent``): going up, it
    claims the new level with a compare-and-set (so two processes on one PostgreSQL database do
    not both send) and delivers the notice for the level reached; going down, it lowers the mark,
    which re-arms the thresholds above. A jump over several thresholds in one change sends only
    the highest (one notice per crossing event).

    Notices go to the owner's INBOX with ``quota_limit=None``, so a full mailbox still gets one;
    for a unit mailbox (R-BOX-2) its head and delegates get a copy too (store.org).
    """

    def __init__(self, service: QuotaService, *, clock: Callable[[], _dt.datetime] | None = None) -> None:
        self.service = service
        self.store = service.store
        self.usage = service.usage
        self.clock = clock or (lambda: _dt.datetime.now(_dt.UTC))
        self._queue: queue.SimpleQueue[tuple[int, ...] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="quota-watcher", daemon=True)
        self._unsubscribe: Callable[[], None] | None = None
        self._outstanding = 0  # account ids queued and not yet looked at
        self._known_level: dict[int, int] = {}  # last notified level this process has seen
        self._cond = threading.Condition()

    def start(self) -> None:
        self._unsubscribe = self.store.subscribe(self._on_commit)
        self._thread.start()

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _on_commit(self, changes: list[FolderChange]) -> None:
        ids = tuple({c.account_id for c in changes})
        with self._cond:
            self._outstanding += len(ids)
        self._queue.put(ids)  # one item per commit: the worker sees a group delivery whole

    def wait_idle(self, timeout: float = 10) -> bool:
        """For tests: True once every account queued so far has been looked at."""
        with self._cond:
            return self._cond.wait_for(lambda: self._outstanding == 0, timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            pending = list(first)
            stop = False
            # Let the commit's other listeners go first (the IMAP reactor telling IDLE clients
            # of a group message: each of its socket writes hands the GIL over, and a busy
            # thread here kept it ~5 ms each time) and gather the commits of a burst into one
            # pass. A warning a quarter of a second later is no loss.
            time.sleep(_SETTLE_S)
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                pending.extend(item)
            accounts = sorted(set(pending))
            # Accounts not seen before need their notified level: one query for all of them, not
            # one each (a group message to 1,000 first-time members cost ~0.3 s of GIL time,
            # which the IMAP reactor telling those members' IDLE clients waited on).
            unseen = [a for a in accounts if a not in self._known_level]
            try:
                lasts = self.usage.notified_many(unseen) if len(unseen) > 1 else {}
            except Exception:  # fall back to one look-up per account
                log.exception("quota watcher: notified levels")
                lasts = {}
            # The accounts too: one query per 500, not one each. This thread runs while the IMAP
            # reactor tells a group's IDLE members; a query per member kept taking the GIL from
            # it at each of its socket writes (bench/fanout.py).
            try:
                found = self.store.accounts.get_accounts_by_ids(accounts) if len(accounts) > 1 else None
            except Exception:
                log.exception("quota watcher: accounts")
                found = None
            for account_id in accounts:
                try:
                    if found is None:
                        self.check(account_id, lasts.get(account_id))
                    elif account_id in found:
                        self.check(account_id, lasts.get(account_id), found[account_id])
                except Exception:  # one bad account must not stop the warnings of the others
                    log.exception("quota watcher: account %s", account_id)
            with self._cond:
                self._outstanding -= len(pending)
                self._cond.notify_all()
            if stop:
                return

    def check(self, account_id: int, last: int | None = None, account: Account | None = None) -> int | None:
        """Look at one account now; returns the threshold notified, or None. ``last``: its
        notified level, and ``account`` the account, if the caller just read them
        (``Usage.notified_many``, ``Store.get_accounts_by_ids``)."""
        if account is None:
            account = self.store.accounts.get_account_by_id(account_id)
        if account is None:
            return None
        thresholds = self.service.settings.quota.thresholds
        limit = self.service.limits_for(account).mailbox_bytes
        now_level = level(account.used_bytes, limit, thresholds)
        if now_level == 0 and self._known_level.get(account_id) == 0:
            return None  # below every threshold and nothing to re-arm: no database round trip
        if last is None:
            last = self.usage.notified(account_id)
        self._known_level[account_id] = now_level
        if now_level == last or not self.usage.claim_notified(account_id, last, now_level):
            return None
        if now_level < last or account.state not in RECEIVE_STATES:
            return None  # re-armed (usage dropped), or nobody to tell
        assert limit is not None
        # Usage can pass several thresholds between two looks (two deliveries at once, or one
        # large one): each notice owed goes out, lowest first, each naming its own percentage.
        for threshold in sorted(t for t in thresholds if last < t <= now_level):
            self._send(account, threshold, limit)
        return now_level

    def _recipients(self, account: Account) -> list[Account]:
        people = [account]
        if account.kind is AccountKind.UNIT:
            org = self.store.org
            unit = org.get_unit(account.address)
            if unit is not None and unit.head is not None:
                people.append(unit.head)
            people += [d.delegate for d in org.delegations(account.id) if d.delegate is not None]
        seen: set[int] = set()
        return [p for p in people if not (p.id in seen or seen.add(p.id)) and p.state in RECEIVE_STATES]

    def _send(self, account: Account, threshold: int, limit: int) -> None:
        from mailserver.mailboxes.notices import quota_notice

        settings = self.service.settings
        for person in self._recipients(account):
            raw = quota_notice(
                threshold=threshold, used=account.used_bytes, limit=limit, mailbox=account.address,
                to=person.address, to_name=person.display_name, domains=settings.domains,
                hostname=settings.hostname, now=self.clock(),
            )
            blob = self.store.messages.put_blob(raw)
            outcome = self.store.messages.deliver(blob, [DeliveryTarget(person.id, "INBOX", quota_limit=None)])[0]
            if outcome.ok:
                log.info("quota: %s at %d%% of %d bytes, notice to %s", account.address, threshold, limit, person.address)
            else:
                log.warning("quota: notice for %s to %s not delivered: %s", account.address, person.address, outcome.error)


def start_quota(settings: Settings, store: SqlStore) -> QuotaService:
    """What app.py calls once after opening the store: the service, its watcher running."""
    service = QuotaService(settings, store)
    if settings.quota.thresholds:
        service.start_watcher()
    return service
