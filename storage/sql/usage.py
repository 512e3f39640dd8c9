"""The usage role (storage.api.Usage): quota and retention operations (R-QUOTA-1/2) for the
operator CLI, the quota service (mailserver/mailboxes/quota.py) and the retention job
(mailserver/mailboxes/retention.py), and store-wide figures for monitoring.

Reads through the core's ``reading()``, every write as one job of the writer (``run_write``), so
each operation is one transaction in the group commit. Message removal reuses the core's row
helpers (``_bump``, ``_remove_messages``, ``_folder_by_id``) so the change log (modseq, ``expunged`` rows) and the usage columns stay exactly
as an IMAP EXPUNGE leaves them, and subscribers (IDLE sessions, the threshold watcher) are told.

Table ``quota_state`` (migration 0005_quota, branch "quota"): the account's quota class and the
highest warning threshold already sent.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Collection, Iterable, Sequence

from sqlalchemy import Connection, func, insert, select, update

from quota.retention import RetentionRule, cutoffs
from storage import api, models as m
from storage.errors import Invalid, NotFound
from storage.api.usage import Drift, Expired
from storage.models import AccountProfile, OrgUnit, quota_state
from storage.api.stats import StoreStats
from storage.sql.accounts import SqlAccounts
from storage.sql.core import StoreCore
from storage.sql.role import Role
from storage.sql.search import SqlSearch
from storage.sql.usage_days import DayCounter

#: Messages removed per write job by ``expire``: a big backlog never holds the writer for long.
EXPIRE_BATCH = 2000


def _naive_utc(when: _dt.datetime) -> _dt.datetime:
    if when.tzinfo is None:
        raise ValueError("retention needs a timezone-aware time")
    return when.astimezone(_dt.UTC).replace(tzinfo=None)


class Usage(Role):
    """Thread-safe like the store it wraps; every method may block (call it off the event loop)."""

    def __init__(self, core: StoreCore, accounts: SqlAccounts, search: SqlSearch) -> None:
        super().__init__(core)
        self.accounts = accounts
        self.search = search
        self.days = DayCounter(core)  # R-OPS-1/2 counters, written in batches

    # -- daily counters (R-OPS-1/2) -----------------------------------------------------------------
    def count(self, account_id: int, fact: str, n: int = 1, at: _dt.datetime | None = None) -> None:
        """See storage.api.Usage.count."""
        self.days.count(account_id, fact, n, at)

    def flush_counts(self) -> int:
        return self.days.flush()

    def prune_days(self, before: _dt.date) -> int:
        return self.days.prune(before)

    def day_facts(self, start: _dt.date, end: _dt.date, account_ids: Sequence[int] | None = None) -> list[api.DayFacts]:
        return self.days.days(start, end, account_ids)

    # -- limits ---------------------------------------------------------------------------------
    def set_quota(self, account_id: int, quota_bytes: int | None) -> None:
        """Per-account mailbox limit (``accounts.quota_bytes``); None = back to the policy's."""
        if quota_bytes is not None and quota_bytes < 0:
            raise Invalid("a quota is not negative")

        def job(conn: Connection, _changes: list) -> None:
            if conn.execute(update(m.Account).where(m.Account.id == account_id).values(quota_bytes=quota_bytes)).rowcount == 0:
                raise NotFound(f"account {account_id}")

        self.run_write(job)

    def set_class(self, account_id: int, class_name: str | None) -> None:
        """Name the ``quota.classes`` entry of an account; on a unit mailbox it is the unit's class."""

        def job(conn: Connection, _changes: list) -> None:
            if conn.scalar(select(m.Account.id).where(m.Account.id == account_id)) is None:
                raise NotFound(f"account {account_id}")
            self._ensure_state(conn, account_id)
            conn.execute(update(quota_state).where(quota_state.c.account_id == account_id).values(class_name=class_name))

        self.run_write(job)

    def class_for(self, account_id: int) -> str | None:
        """The account's own class, else its unit's (from the registration profile), else the
        nearest parent unit's. None when nothing names one."""
        with self.reading() as conn:
            own = conn.scalar(select(quota_state.c.class_name).where(quota_state.c.account_id == account_id))
            if own is not None:
                return own
            unit_id = conn.scalar(select(AccountProfile.unit_id).where(AccountProfile.account_id == account_id))
            seen: set[int] = set()
            while unit_id is not None and unit_id not in seen:
                seen.add(unit_id)
                row = conn.execute(
                    select(OrgUnit.parent_id, quota_state.c.class_name)
                    .select_from(OrgUnit)
                    .outerjoin(quota_state, quota_state.c.account_id == OrgUnit.account_id)
                    .where(OrgUnit.id == unit_id)
                ).first()
                if row is None:
                    return None
                if row.class_name is not None:
                    return row.class_name
                unit_id = row.parent_id
        return None

    # -- warnings -------------------------------------------------------------------------------
    def notified(self, account_id: int) -> int:
        """Highest warning threshold (percent) already sent to this account; 0 = none."""
        with self.reading() as conn:
            return conn.scalar(select(quota_state.c.notified_percent).where(quota_state.c.account_id == account_id)) or 0

    def notified_many(self, account_ids: Sequence[int]) -> dict[int, int]:
        """``notified`` for many accounts in a few queries (a group delivery commits a thousand)."""
        levels = dict.fromkeys(account_ids, 0)
        ids = list(levels)
        with self.reading() as conn:
            for start in range(0, len(ids), 500):
                # Pairs, not the result itself: a Result has ``keys()`` (its column names), so
                # ``dict.update`` would take it for a mapping and index it by column name.
                rows = conn.execute(
                    select(quota_state.c.account_id, quota_state.c.notified_percent)
                    .where(quota_state.c.account_id.in_(ids[start:start + 500]), quota_state.c.notified_percent != 0)
                ).all()
                levels.update((account_id, percent) for account_id, percent in rows)
        return levels

    def claim_notified(self, account_id: int, expected: int, new: int) -> bool:
        """Compare-and-set of the notified threshold: True only for the one caller (thread or
        process) that moved it from ``expected`` to ``new``, so each crossing is told once."""

        def job(conn: Connection, _changes: list) -> bool:
            if conn.scalar(select(m.Account.id).where(m.Account.id == account_id)) is None:
                return False
            self._ensure_state(conn, account_id)
            return conn.execute(
                update(quota_state)
                .where(quota_state.c.account_id == account_id, quota_state.c.notified_percent == expected)
                .values(notified_percent=new)
            ).rowcount == 1

        return self.run_write(job)

    @staticmethod
    def _ensure_state(conn: Connection, account_id: int) -> None:
        if conn.scalar(select(quota_state.c.account_id).where(quota_state.c.account_id == account_id)) is None:
            conn.execute(insert(quota_state).values(account_id=account_id, notified_percent=0))

    # -- usage ----------------------------------------------------------------------------------
    def report(self) -> list[api.Account]:
        """Every account with its usage, largest first (``quota report``)."""
        return sorted(self.accounts.list_accounts(), key=lambda a: (-a.used_bytes, a.address))

    def recalc(self, account_id: int | None = None) -> list[Drift]:
        """Rebuild ``used_bytes``/``used_messages`` of one account (or all) from its messages, in
        one write job, and return the accounts whose stored figures were wrong (before fixing)."""

        def job(conn: Connection, _changes: list) -> list[Drift]:
            accounts = select(m.Account.id, m.Account.address, m.Account.used_bytes, m.Account.used_messages)
            if account_id is not None:
                accounts = accounts.where(m.Account.id == account_id)
            if not self.is_sqlite:
                # Deliveries in other processes charge these rows: hold them while counting.
                accounts = accounts.with_for_update()
            rows = conn.execute(accounts.order_by(m.Account.id)).all()
            if account_id is not None and not rows:
                raise NotFound(f"account {account_id}")
            sums = (
                select(m.Folder.account_id, func.count(m.Message.id), func.coalesce(func.sum(m.Message.size), 0))
                .join(m.Message, m.Message.folder_id == m.Folder.id)
                .group_by(m.Folder.account_id)
            )
            if account_id is not None:
                sums = sums.where(m.Folder.account_id == account_id)
            actual = {a: (int(n), int(size)) for a, n, size in conn.execute(sums)}
            drift = []
            for row in rows:
                count, size = actual.get(row.id, (0, 0))
                if (row.used_bytes, row.used_messages) != (size, count):
                    drift.append(Drift(row.id, row.address, row.used_bytes, row.used_messages, size, count))
                    conn.execute(
                        update(m.Account).where(m.Account.id == row.id).values(used_bytes=size, used_messages=count)
                    )
            return drift

        return self.run_write(job)

    # -- monitoring -----------------------------------------------------------------------------
    def stats(self) -> StoreStats:
        """Figures about the whole store for monitoring (the portal's ``/metrics``): a few aggregate
        queries, cheap with the existing indexes, meant to be read every 15-60 s, not per message."""
        with self.reading() as conn:
            accounts = {(kind, state): n for kind, state, n in conn.execute(
                select(m.Account.kind, m.Account.state, func.count()).group_by(m.Account.kind, m.Account.state))}
            used, messages = conn.execute(
                select(func.coalesce(func.sum(m.Account.used_bytes), 0), func.coalesce(func.sum(m.Account.used_messages), 0))
            ).one()
            bodies = conn.scalar(select(func.count()).select_from(m.Blob)) or 0
            outbound = dict(conn.execute(
                select(m.OutboundRecipient.state, func.count()).group_by(m.OutboundRecipient.state)).all())
        return StoreStats(accounts, int(used), int(messages), int(bodies), outbound, self.search.index_backlog())

    # -- retention (R-QUOTA-2) ------------------------------------------------------------------
    def expire(
        self,
        rules: Iterable[RetentionRule],
        now: _dt.datetime,
        *,
        dry_run: bool,
        account_ids: Sequence[int] | None = None,
        keep: Collection[tuple[str, str]] = (),
    ) -> list[Expired]:
        """Messages whose INTERNALDATE is before their folder's cutoff (``quota.retention``).
        A dry run lists them; a real run expunges them (change log written, quota released),
        at most ``EXPIRE_BATCH`` per write job, and lists what it removed. ``keep``: (address,
        folder name) pairs no rule touches (a unit's archive kept by the operator)."""
        rules = tuple(rules)
        kept = {(a.lower(), name) for a, name in keep}
        with self.reading() as conn:
            stmt = select(m.Folder.id, m.Folder.name, m.Folder.special_use, m.Account.id.label("account_id"),
                          m.Account.address).join(m.Account, m.Account.id == m.Folder.account_id)
            if account_ids is not None:
                stmt = stmt.where(m.Account.id.in_(list(account_ids)))
            folders = conn.execute(stmt.order_by(m.Account.address, m.Folder.name)).all()
        result: list[Expired] = []
        for f in folders:
            if (f.address.lower(), f.name) in kept:
                continue
            cutoff = cutoffs([(f.name, f.special_use)], rules, now).get(f.name)
            if cutoff is None:
                continue
            limit = _naive_utc(cutoff)
            if dry_run:
                with self.reading() as conn:
                    rows = conn.execute(self._expired_rows(f.id, limit, None)).all()
                result.extend(self._listed(f, rows))
                continue
            while True:
                removed = self.run_write(self._expunge_job(f.id, limit))
                result.extend(self._listed(f, removed))
                if len(removed) < EXPIRE_BATCH:
                    break
        return result

    @staticmethod
    def _expired_rows(folder_id: int, limit: _dt.datetime, batch: int | None):
        stmt = (
            select(m.Message.uid, m.Message.size, m.Message.internaldate)
            .where(m.Message.folder_id == folder_id, m.Message.internaldate < limit)
            .order_by(m.Message.uid)
        )
        return stmt if batch is None else stmt.limit(batch)

    def _expunge_job(self, folder_id: int, limit: _dt.datetime):
        store = self

        def job(conn: Connection, changes: list) -> list:
            try:
                folder = store._folder_by_id(conn, folder_id)
            except NotFound:  # deleted meanwhile: nothing left to expire
                return []
            rows = conn.execute(self._expired_rows(folder_id, limit, EXPIRE_BATCH)).all()
            if not rows:
                return []
            modseq = store._bump(conn, folder_id)
            store._remove_messages(conn, folder, rows, modseq)
            changes.append(api.FolderChange(folder.account_id, folder_id, modseq))
            return rows

        return job

    @staticmethod
    def _listed(folder, rows) -> list[Expired]:
        return [
            Expired(folder.account_id, folder.address, folder.name, r.uid, r.size, r.internaldate.replace(tzinfo=_dt.UTC))
            for r in rows
        ]
