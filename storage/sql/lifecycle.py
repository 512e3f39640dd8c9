"""Account lifecycle over the store (R-LIFE-1..5, R-PASS-1/3, R-ACC-2): the facts the policy
(``mailserver.policy.lifecycle``) decides on, and the state changes it and the operator make.

The lifecycle role (storage.api.Lifecycle): reads through the core's ``reading()``, every write
one job of the writer (``run_write``), so a state change,
its lifecycle row and its audit entry commit together. State changes are compare-and-set on the
state the caller saw: two server processes running the daily job on one PostgreSQL database, or
the job racing an operator, change an account once, and only the winner sends the unit's notice.

Table ``account_lifecycle`` (migration 0007_lifecycle, branch "lifecycle"): why and when the
state last changed, the last re-activation, the leaving notice and date, and two exemptions.
Its ``state`` column names the state the reason belongs to, so a change made elsewhere (``account
lock``, a handover) simply makes the old reason stale instead of wrong.

Audit: every change is a row of ``org_audit`` (actor ``operator`` for the CLI, ``lifecycle`` for
the job) next to the delegate accesses storage/sql/org.py records.
"""

from __future__ import annotations

import datetime as _dt

from sqlalchemy import Connection, func
from sqlalchemy import insert, select, update

from mailserver.policy.lifecycle import AccountFacts
from storage import api, models as m
from storage.errors import NotFound
from storage.models import AccountProfile, OrgAudit, OrgUnit, account_lifecycle
from storage.sql.accounts import SqlAccounts
from storage.sql.core import StoreCore
from storage.sql.role import Role

from storage.api.lifecycle import OPERATOR, PASSWORD_EXPIRED, Record


def _db(when: _dt.datetime | None) -> _dt.datetime | None:
    if when is None or when.tzinfo is None:
        return when
    return when.astimezone(_dt.UTC).replace(tzinfo=None)


def _aware(value) -> _dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # an aggregate over SQLite DateTime text
        value = _dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=_dt.UTC) if value.tzinfo is None else value.astimezone(_dt.UTC)


def _latest(*values: _dt.datetime | None) -> _dt.datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


class Lifecycle(Role):
    """See storage.api.Lifecycle (and the module docstring)."""

    def __init__(self, core: StoreCore, accounts: SqlAccounts) -> None:
        super().__init__(core)
        self.accounts = accounts

    # -- reading ------------------------------------------------------------------------------
    def records(self, account_id: int | None = None) -> list[Record]:
        """Every account with its facts, by address. A unit mailbox counts as accessed when its
        head logged in or a delegate used it (org_audit), since they reach it from their own
        sessions (R-BOX-2); its own logins count too."""
        lc = account_lifecycle.c
        stmt = (
            select(m.Account, lc.state.label("lc_state"), lc.state_changed_at, lc.state_reason, lc.reactivated_at,
                   lc.notice_at, lc.left_at, lc.keep_after_leaving, lc.exempt_from_inactivity)
            .outerjoin(account_lifecycle, lc.account_id == m.Account.id)
            .order_by(m.Account.address)
        )
        with self.reading() as conn:
            rows = conn.execute(stmt if account_id is None else stmt.where(m.Account.id == account_id)).all()
            delegate_access = dict(conn.execute(
                select(OrgAudit.mailbox_account_id, func.max(OrgAudit.at))
                .where(OrgAudit.mailbox_account_id.in_(select(OrgUnit.account_id)),
                       OrgAudit.actor_account_id.is_not(None), OrgAudit.actor_account_id != OrgAudit.mailbox_account_id)
                .group_by(OrgAudit.mailbox_account_id)
            ).all())
            heads = dict(conn.execute(select(OrgUnit.account_id, OrgUnit.head_account_id)).all())
        accounts = {r.id: self._account(r) for r in rows}
        if account_id is not None and rows and rows[0].kind == api.AccountKind.UNIT.value:
            head = self.accounts.get_account_by_id(heads.get(account_id) or 0)
            if head is not None:
                accounts[head.id] = head
        records = []
        for r in rows:
            a = accounts[r.id]
            last_login = a.last_login_at
            if a.kind is api.AccountKind.UNIT:
                head = accounts.get(heads.get(a.id) or 0)
                last_login = _latest(last_login, _aware(delegate_access.get(a.id)), head.last_login_at if head else None)
            current = r.lc_state == a.state.value  # the recorded reason is about this state
            reason = r.state_reason if current else None
            changed_at = _aware(r.state_changed_at) if current else None
            reactivated = _aware(r.reactivated_at)
            must_change_since = None
            if a.state is api.AccountState.MUST_CHANGE_PASSWORD:
                issued = _latest(a.password_changed_at, reactivated) or a.created_at
                expired = reason == PASSWORD_EXPIRED and changed_at is not None and changed_at >= issued
                must_change_since = None if expired else issued  # R-PASS-1/3: an operator-issued password
            facts = AccountFacts(
                state=a.state.value, created_at=a.created_at, kind=a.kind.value, last_login_at=last_login,
                reactivated_at=reactivated, password_changed_at=a.password_changed_at,
                must_change_since=must_change_since, notice_at=_aware(r.notice_at), left_at=_aware(r.left_at),
                keep_after_leaving=bool(r.keep_after_leaving), exempt_from_inactivity=bool(r.exempt_from_inactivity),
                locked_at=changed_at if a.state is api.AccountState.LOCKED else None,
                lock_reason=reason if a.state is api.AccountState.LOCKED else None,
            )
            records.append(Record(a, facts, reason))
        return records

    def record(self, account_id: int) -> Record | None:
        found = self.records(account_id)
        return found[0] if found else None

    def unit_contacts(self, account_id: int) -> tuple[str | None, list[api.Account]]:
        """(unit name, who is told of a change to ``account_id``): the mailbox of the account's
        unit (else of the unit it heads) and the unit's head (for a unit mailbox: its head), able
        to receive, without the account itself (R-LIFE-3 "the operator notifies the unit by mail")."""
        with self.reading() as conn:
            unit = conn.execute(select(OrgUnit).where(OrgUnit.account_id == account_id)).first()
            if unit is None:
                unit_id = conn.scalar(select(AccountProfile.unit_id).where(AccountProfile.account_id == account_id))
                unit = conn.execute(select(OrgUnit).where(OrgUnit.id == unit_id)).first() if unit_id else None
            if unit is None:  # a head without a unit of their own in the directory: the unit they head
                unit = conn.execute(select(OrgUnit).where(OrgUnit.head_account_id == account_id)
                                    .order_by(OrgUnit.id)).first()
            if unit is None:
                return None, []
            ids = [i for i in (unit.account_id, unit.head_account_id) if i is not None and i != account_id]
        people = [self.accounts.get_account_by_id(i) for i in dict.fromkeys(ids)]
        return unit.name, [p for p in people if p is not None and p.state in api.RECEIVE_STATES]

    # -- writing ------------------------------------------------------------------------------
    def change_state(
        self, account_id: int, expected: api.AccountState, state: api.AccountState, reason: str, *,
        now: _dt.datetime, actor: str = OPERATOR, action: str | None = None, detail: str = "",
        password_hash: str | None = None, reactivate: bool = False, clear_leaving: bool = False,
    ) -> bool:
        """Move the account from ``expected`` to ``state`` with ``reason`` in one transaction,
        with its audit entry; False (nothing written) when its state is no longer ``expected``.
        ``reactivate`` (operator unlock, re-issue) restarts the inactivity clock;
        ``clear_leaving`` forgets the leaving notice, so the job does not revoke a re-issued
        account again; ``password_hash`` sets a new password in the same transaction."""
        when = _db(now)

        def job(conn: Connection, _changes: list) -> bool:
            values: dict = {"state": str(state)}
            if password_hash is not None:
                values.update(password_hash=password_hash, password_changed_at=when)
            done = conn.execute(update(m.Account).where(m.Account.id == account_id, m.Account.state == str(expected))
                                .values(**values)).rowcount
            if not done:
                if conn.scalar(select(m.Account.id).where(m.Account.id == account_id)) is None:
                    raise NotFound(f"account {account_id}")
                return False
            row: dict = {"state": str(state), "state_changed_at": when, "state_reason": reason[:255]}
            if reactivate:
                row["reactivated_at"] = when
            if clear_leaving:
                row.update(notice_at=None, left_at=None)
            self._upsert(conn, account_id, row)
            self._audit(conn, account_id, actor, action or str(state), detail or reason)
            return True

        return self.run_write(job)

    def set_leaving(
        self, account_id: int, *, notice_at: _dt.datetime | None, left_at: _dt.datetime | None,
        keep: bool,
    ) -> None:
        """Record the unit's written notice (R-LIFE-2/4) and/or the leaving date; ``keep``: a former
        head keeps the mailbox on request (most art. 18.3). All None and not ``keep`` cancels."""
        detail = f"notice={notice_at.isoformat() if notice_at else '-'} left={left_at.isoformat() if left_at else '-'}"
        detail += " keep" if keep else ""

        def job(conn: Connection, _changes: list) -> None:
            if conn.scalar(select(m.Account.id).where(m.Account.id == account_id)) is None:
                raise NotFound(f"account {account_id}")
            self._upsert(conn, account_id, {"notice_at": _db(notice_at), "left_at": _db(left_at),
                                             "keep_after_leaving": keep})
            self._audit(conn, account_id, OPERATOR, "leave", detail)

        self.run_write(job)

    def set_exempt(self, account_id: int, exempt: bool) -> None:
        """Keep (or stop keeping) the account out of the inactivity rules: service accounts,
        mailboxes kept on the unit's request."""

        def job(conn: Connection, _changes: list) -> None:
            if conn.scalar(select(m.Account.id).where(m.Account.id == account_id)) is None:
                raise NotFound(f"account {account_id}")
            self._upsert(conn, account_id, {"exempt_from_inactivity": exempt})
            self._audit(conn, account_id, OPERATOR, "exempt" if exempt else "unexempt", "")

        self.run_write(job)

    @staticmethod
    def _upsert(conn: Connection, account_id: int, values: dict) -> None:
        # The writer serialises this process's jobs; on PostgreSQL two processes racing on the
        # insert fail one transaction, which the caller sees as an error and may run again.
        lc = account_lifecycle.c
        if not conn.execute(update(account_lifecycle).where(lc.account_id == account_id).values(**values)).rowcount:
            conn.execute(insert(account_lifecycle).values(account_id=account_id, **values))

    @staticmethod
    def _audit(conn: Connection, account_id: int, actor: str, action: str, detail: str) -> None:
        """Stamped with the real time even when the job runs with ``--now`` (a preview)."""
        at = _dt.datetime.now(_dt.UTC).replace(tzinfo=None)
        address = conn.scalar(select(m.Account.address).where(m.Account.id == account_id)) or ""
        conn.execute(insert(OrgAudit).values(at=at, actor_account_id=None, actor=actor, mailbox_account_id=account_id,
                                             mailbox=address, action=action[:32], detail=detail))
