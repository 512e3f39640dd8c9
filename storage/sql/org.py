"""The organisation role (storage.api.Organisation): units, delegations, handover, groups,
profiles, audit. Longer than the other role modules because the role is: its value types moved to
storage/api/org.py; splitting units from groups would cut through the rights and the handover,
which read both.

R-BOX-2 a unit (đơn vị) has a unit mailbox (an account of kind "unit") owned by its head, who may
delegate it to staff with rights; R-BOX-3 a handover passes address, password and all content to
the new head; R-BOX-4 a group mailbox delivers into every member's mailbox; R-ACC-1 nobody else
reaches a mailbox; R-DIR-1 profiles feed the directory. Tables: storage/models/org.py.

Contract (storage/api/roles.py): synchronous, thread-safe, frozen dataclasses in and out; reads
on the caller's thread (the core's ``reading()``), writes as one job each in the store's group
commit (``run_write``), returning once durable. Front ends call it off their event loop, like the
Store. Errors are storage.errors kinds: ``NotFound``, ``Exists``, ``NoPerm``, ``Invalid``.

Rights are derived, never cached: an account has every right on its own mailbox and on the unit
mailbox it heads, a delegate has what its delegation row says, anyone else has none. A handover
changes the head in the same transaction as the password, so the old head's rights end at once.
"""

from __future__ import annotations

import datetime as _dt
import unicodedata
from typing import Iterable, Sequence

from sqlalchemy import Connection, delete, func, insert, select, update

from storage import api, models as m
from storage.errors import Exists, Invalid, NoPerm, NotFound
from storage.api.org import (
    ALL_RIGHTS,
    OPERATOR,
    AuditEntry,
    Delegation,
    DirectoryRow,
    Group,
    NewPerson,
    Profile,
    Right,
    SendPolicy,
    SharedMailbox,
    Unit,
    format_rights,
    parse_rights,
    person_key,
)
from storage.models import AccountProfile, OrgAudit, OrgDelegation, OrgGroup, OrgGroupMember, OrgUnit
from storage.sql.accounts import SqlAccounts
from storage.sql.core import StoreCore
from storage.sql.role import Role

def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)


def _nfc(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


class Organisation(Role):
    """See storage.api.Organisation (and the module docstring)."""

    def __init__(self, core: StoreCore, accounts: SqlAccounts) -> None:
        super().__init__(core)
        self.accounts = accounts

    # -- helpers ------------------------------------------------------------------------------
    def _acct(self, conn: Connection, account_id: int | None) -> api.Account | None:
        if account_id is None:
            return None
        row = conn.execute(select(m.Account).where(m.Account.id == account_id)).first()
        return self._account(row) if row else None

    def _acct_by_address(self, conn: Connection, address: str) -> api.Account | None:
        try:
            address = self._normalise_address(address)
        except Invalid:
            return None
        row = conn.execute(
            select(m.Account).join(m.Address, m.Address.account_id == m.Account.id).where(m.Address.address == address)
        ).first()
        return self._account(row) if row else None

    def _insert_account(
        self, conn: Connection, address: str, display_name: str, password_hash: str | None,
        kind: api.AccountKind, state: api.AccountState,
    ) -> int:
        """SqlStore.create_account's job inside a larger transaction (test_org_accounts checks
        both give the same account), so a unit or a whole import commits in one piece."""
        address = self._normalise_address(address)
        if conn.scalar(select(m.Address.account_id).where(m.Address.address == address)) is not None:
            raise Exists(f"address {address} is taken")
        now = _now()
        account_id = conn.execute(
            insert(m.Account).values(
                address=address, display_name=display_name, kind=str(kind), state=str(state),
                password_hash=password_hash, created_at=now, password_changed_at=now if password_hash else None,
                used_bytes=0, used_messages=0, last_uidvalidity=0,
            ).returning(m.Account.id)
        ).scalar_one()
        conn.execute(insert(m.Address).values(address=address, account_id=account_id))
        for name, special_use in api.DEFAULT_FOLDERS:
            self._insert_folder(conn, account_id, name, special_use)
        self._subscribe_defaults(conn, account_id)
        return account_id

    def _check_local(self, conn: Connection, address: str) -> str:
        address = self._normalise_address(address)
        domain = address.rpartition("@")[2]
        if conn.scalar(select(m.Domain.id).where(m.Domain.name == domain)) is None:
            raise Invalid(f"{domain} is not a local domain")
        return address

    @staticmethod
    def _audit(conn: Connection, actor: api.Account | None, mailbox: api.Account | None, action: str,
               detail: str = "") -> None:
        conn.execute(
            insert(OrgAudit).values(
                at=_now(), actor_account_id=actor.id if actor else None, actor=actor.address if actor else OPERATOR,
                mailbox_account_id=mailbox.id if mailbox else None, mailbox=mailbox.address if mailbox else "",
                action=action, detail=detail,
            )
        )

    # -- units (R-BOX-2) ----------------------------------------------------------------------
    def add_unit(
        self, name: str, code: str, address: str, password_hash: str | None, *,
        parent: str | None = None, head_account_id: int | None = None,
    ) -> Unit:
        """Create the unit and its mailbox (an account of kind "unit") in one transaction.

        ``parent``: code of the parent unit. ``Exists`` if the code or address is taken."""
        name, code = _nfc(name), code.strip().lower()
        if not name or not code or any(c.isspace() or c == "/" for c in code):
            raise Invalid("a unit needs a name and a code without spaces or '/'")

        def job(conn: Connection, _changes: list) -> int:
            address_ = self._check_local(conn, address)
            if conn.scalar(select(OrgUnit.id).where(OrgUnit.code == code)) is not None:
                raise Exists(f"unit code {code}")
            parent_id = None
            if parent is not None:
                parent_id = conn.scalar(select(OrgUnit.id).where(OrgUnit.code == parent.strip().lower()))
                if parent_id is None:
                    raise NotFound(f"parent unit {parent}")
            head = self._check_head(conn, head_account_id) if head_account_id is not None else None
            state = api.AccountState.MUST_CHANGE_PASSWORD  # R-PASS-1: the head changes it first
            account_id = self._insert_account(conn, address_, name, password_hash, api.AccountKind.UNIT, state)
            unit_id = conn.execute(
                insert(OrgUnit).values(code=code, name=name, parent_id=parent_id, account_id=account_id,
                                       head_account_id=head_account_id, created_at=_now()).returning(OrgUnit.id)
            ).scalar_one()
            self._audit(conn, None, self._acct(conn, account_id), "unit-add",
                        f"code={code} head={head.address if head else '-'}")
            return unit_id

        unit_id = self.run_write(job)
        with self.reading() as conn:
            return self._unit(conn, conn.execute(select(OrgUnit).where(OrgUnit.id == unit_id)).one())

    def _unit_row(self, conn: Connection, code: str):
        row = conn.execute(select(OrgUnit).where(OrgUnit.code == code.strip().lower())).first()
        if row is None:
            raise NotFound(f"unit {code}")
        return row

    def rename_unit(self, code: str, name: str) -> Unit:
        name = _nfc(name)
        if not name:
            raise Invalid("a unit needs a name")

        def job(conn: Connection, _changes: list) -> int:
            row = self._unit_row(conn, code)
            conn.execute(update(OrgUnit).where(OrgUnit.id == row.id).values(name=name))
            conn.execute(update(m.Account).where(m.Account.id == row.account_id).values(display_name=name))
            self._audit(conn, None, self._acct(conn, row.account_id), "unit-rename", f"{row.name} -> {name}")
            return row.id

        unit_id = self.run_write(job)
        with self.reading() as conn:
            return self._unit(conn, conn.execute(select(OrgUnit).where(OrgUnit.id == unit_id)).one())

    def move_unit(self, code: str, parent: str | None) -> Unit:
        def job(conn: Connection, _changes: list) -> int:
            row = self._unit_row(conn, code)
            parent_row = self._unit_row(conn, parent) if parent is not None else None
            at = parent_row.id if parent_row is not None else None
            while at is not None:  # the new parent may not be the unit itself or below it
                if at == row.id:
                    raise Invalid(f"unit {row.code} cannot move under itself or one of its own units")
                at = conn.scalar(select(OrgUnit.parent_id).where(OrgUnit.id == at))
            conn.execute(update(OrgUnit).where(OrgUnit.id == row.id).values(parent_id=parent_row.id if parent_row else None))
            old = conn.scalar(select(OrgUnit.code).where(OrgUnit.id == row.parent_id)) if row.parent_id else None
            self._audit(conn, None, self._acct(conn, row.account_id), "unit-move",
                        f"parent {old or '-'} -> {parent_row.code if parent_row else '-'}")
            return row.id

        unit_id = self.run_write(job)
        with self.reading() as conn:
            return self._unit(conn, conn.execute(select(OrgUnit).where(OrgUnit.id == unit_id)).one())

    def remove_unit(self, code: str) -> None:
        def job(conn: Connection, _changes: list) -> None:
            row = self._unit_row(conn, code)
            members = conn.scalar(select(func.count()).select_from(AccountProfile).where(AccountProfile.unit_id == row.id))
            if members:
                raise Invalid(f"unit {row.code} still has {members} member(s): move them first (account move --unit)")
            children = list(conn.scalars(select(OrgUnit.code).where(OrgUnit.parent_id == row.id).order_by(OrgUnit.code)))
            if children:
                raise Invalid(f"unit {row.code} still has units below it: {', '.join(children)}")
            conn.execute(delete(OrgDelegation).where(OrgDelegation.unit_account_id == row.account_id))
            conn.execute(delete(OrgUnit).where(OrgUnit.id == row.id))
            self._audit(conn, None, self._acct(conn, row.account_id), "unit-remove", f"code={row.code} name={row.name}")

        self.run_write(job)

    def _check_head(self, conn: Connection, account_id: int) -> api.Account:
        head = self._acct(conn, account_id)
        if head is None:
            raise NotFound(f"account {account_id}")
        if head.kind is not api.AccountKind.PERSONAL or head.state not in api.LOGIN_STATES:
            raise Invalid(f"{head.address} is not an active personal account and cannot head a unit")
        return head

    def _unit(self, conn: Connection, row) -> Unit:
        path, parent, seen = [row.name], row.parent_id, {row.id}
        while parent is not None and parent not in seen:
            seen.add(parent)
            prow = conn.execute(select(OrgUnit.name, OrgUnit.parent_id).where(OrgUnit.id == parent)).first()
            if prow is None:
                break
            path.append(prow.name)
            parent = prow.parent_id
        account = self._acct(conn, row.account_id)
        assert account is not None
        others = sorted(a for a in conn.scalars(select(m.Address.address).where(m.Address.account_id == account.id))
                        if a != account.address)
        return Unit(row.id, row.code, row.name, row.parent_id, account, (account.address, *others),
                    self._acct(conn, row.head_account_id), tuple(reversed(path)))

    def get_unit(self, code_or_address: str) -> Unit | None:
        """By code (any case) or by any address of the unit mailbox."""
        key = code_or_address.strip()
        with self.reading() as conn:
            row = conn.execute(select(OrgUnit).where(OrgUnit.code == key.lower())).first()
            if row is None and "@" in key:
                account = self._acct_by_address(conn, key)
                if account is not None:
                    row = conn.execute(select(OrgUnit).where(OrgUnit.account_id == account.id)).first()
            return self._unit(conn, row) if row else None

    def unit_by_id(self, unit_id: int) -> Unit | None:
        with self.reading() as conn:
            row = conn.execute(select(OrgUnit).where(OrgUnit.id == unit_id)).first()
            return self._unit(conn, row) if row else None

    def list_units(self) -> list[Unit]:
        """Every unit, parents before their children, siblings by code."""
        with self.reading() as conn:
            units = [self._unit(conn, r) for r in conn.execute(select(OrgUnit).order_by(OrgUnit.code))]
        by_parent: dict[int | None, list[Unit]] = {}
        ids = {u.id for u in units}
        for u in units:
            by_parent.setdefault(u.parent_id if u.parent_id in ids else None, []).append(u)
        ordered: list[Unit] = []

        def walk(parent: int | None) -> None:
            for u in by_parent.get(parent, []):
                ordered.append(u)
                walk(u.id)

        walk(None)
        return ordered

    def add_address(self, account_id: int, address: str) -> None:
        """Give an account one more address (a unit may have several, R-BOX-2). ``Exists`` if taken."""

        def job(conn: Connection, _changes: list) -> None:
            address_ = self._check_local(conn, address)
            account = self._acct(conn, account_id)
            if account is None:
                raise NotFound(f"account {account_id}")
            if conn.scalar(select(m.Address.account_id).where(m.Address.address == address_)) is not None:
                raise Exists(f"address {address_} is taken")
            conn.execute(insert(m.Address).values(address=address_, account_id=account_id))
            self._audit(conn, None, account, "address-add", address_)

        self.run_write(job)

    def rename_account(self, account_id: int, new_address: str, *, alias_until: _dt.datetime | None,
                       keep_alias: bool = True) -> api.Account:
        """New primary address; the old one stays an alias until ``alias_until`` (None: until
        removed), or goes at once when not ``keep_alias``. Audited."""

        def job(conn: Connection, _changes: list) -> None:
            address_ = self._check_local(conn, new_address)
            account = self._acct(conn, account_id)
            if account is None:
                raise NotFound(f"account {account_id}")
            owner = conn.scalar(select(m.Address.account_id).where(m.Address.address == address_))
            if owner is not None and owner != account_id:
                raise Exists(f"address {address_} is taken")
            if address_ == account.address:
                raise Invalid(f"{address_} is already the account's address")
            old = account.address
            conn.execute(update(m.Account).where(m.Account.id == account_id).values(address=address_))
            if owner is None:
                conn.execute(insert(m.Address).values(address=address_, account_id=account_id))
            conn.execute(delete(m.address_expiry).where(m.address_expiry.c.address == address_))
            if not keep_alias:
                conn.execute(delete(m.Address).where(m.Address.address == old))
            elif alias_until is not None:
                conn.execute(insert(m.address_expiry).values(address=old, expires_at=alias_until.astimezone(_dt.UTC).replace(tzinfo=None)))
            until = "not kept" if not keep_alias else (alias_until.isoformat(timespec="seconds") if alias_until else "kept")
            self._audit(conn, None, self._acct(conn, account_id), "rename", f"{old} -> {address_}; old address {until}")

        self.run_write(job)
        with self.reading() as conn:
            return self._acct(conn, account_id)

    def expire_aliases(self, now: _dt.datetime) -> list[tuple[str, str]]:
        """Remove the renamed accounts' old addresses whose time is over: [(old, account address)]."""

        def job(conn: Connection, _changes: list) -> list[tuple[str, str]]:
            cut = now.astimezone(_dt.UTC).replace(tzinfo=None)
            rows = conn.execute(select(m.address_expiry.c.address, m.Address.account_id)
                                .join(m.Address, m.Address.address == m.address_expiry.c.address)
                                .where(m.address_expiry.c.expires_at <= cut)).all()
            done = []
            for address, account_id in rows:
                account = self._acct(conn, account_id)
                conn.execute(delete(m.address_expiry).where(m.address_expiry.c.address == address))
                if account is not None and account.address != address:
                    conn.execute(delete(m.Address).where(m.Address.address == address))
                    self._audit(conn, None, account, "alias-expired", address)
                    done.append((address, account.address))
            return done

        return self.run_write(job)

    # -- delegation (R-BOX-2, R-ACC-1) --------------------------------------------------------
    def _unit_row_for_account(self, conn: Connection, account_id: int):
        row = conn.execute(select(OrgUnit).where(OrgUnit.account_id == account_id)).first()
        if row is None:
            raise NotFound(f"account {account_id} is not a unit mailbox")
        return row

    def delegate(
        self, unit_account_id: int, delegate_account_id: int, rights: Iterable[Right], *, granted_by: int | None = None
    ) -> Delegation:
        """Grant (or replace) a delegate's rights on a unit mailbox. ``granted_by`` is the head
        when the head does it (e.g. from a mail client); None is the operator acting on the head's
        written request. Anyone else → ``NoPerm``."""
        rights = frozenset(rights)
        if not rights:
            raise Invalid("no rights given")

        def job(conn: Connection, _changes: list) -> None:
            unit = self._unit_row_for_account(conn, unit_account_id)
            if granted_by is not None and granted_by != unit.head_account_id:
                raise NoPerm("only the head of the unit may delegate its mailbox")
            delegate = self._acct(conn, delegate_account_id)
            if delegate is None:
                raise NotFound(f"account {delegate_account_id}")
            if delegate.kind is not api.AccountKind.PERSONAL:
                raise Invalid(f"{delegate.address} is not a personal account")
            if delegate.id == unit.head_account_id:
                raise Invalid(f"{delegate.address} heads the unit and has every right already")
            conn.execute(delete(OrgDelegation).where(OrgDelegation.unit_account_id == unit_account_id,
                                                     OrgDelegation.delegate_account_id == delegate_account_id))
            conn.execute(insert(OrgDelegation).values(
                unit_account_id=unit_account_id, delegate_account_id=delegate_account_id,
                rights=format_rights(rights), granted_by=granted_by, granted_at=_now()))
            self._audit(conn, self._acct(conn, granted_by), self._acct(conn, unit_account_id), "delegate",
                        f"{delegate.address} {format_rights(rights)}")

        self.run_write(job)
        return next(d for d in self.delegations(unit_account_id) if d.delegate.id == delegate_account_id)

    def undelegate(self, unit_account_id: int, delegate_account_id: int, *, revoked_by: int | None = None) -> None:
        def job(conn: Connection, _changes: list) -> None:
            unit = self._unit_row_for_account(conn, unit_account_id)
            if revoked_by is not None and revoked_by != unit.head_account_id:
                raise NoPerm("only the head of the unit may withdraw a delegation")
            gone = conn.execute(delete(OrgDelegation).where(
                OrgDelegation.unit_account_id == unit_account_id,
                OrgDelegation.delegate_account_id == delegate_account_id)).rowcount
            if not gone:
                raise NotFound("no such delegation")
            delegate = self._acct(conn, delegate_account_id)
            self._audit(conn, self._acct(conn, revoked_by), self._acct(conn, unit_account_id), "undelegate",
                        delegate.address if delegate else str(delegate_account_id))

        self.run_write(job)

    def delegations(self, unit_account_id: int) -> list[Delegation]:
        with self.reading() as conn:
            rows = conn.execute(select(OrgDelegation).where(OrgDelegation.unit_account_id == unit_account_id)).all()
            result = [Delegation(r.unit_account_id, self._acct(conn, r.delegate_account_id),
                                 parse_rights(r.rights), r.granted_by, r.granted_at.replace(tzinfo=_dt.UTC))
                      for r in rows]
        return sorted(result, key=lambda d: d.delegate.address)

    def _rights(self, conn: Connection, account_id: int, mailbox_account_id: int) -> frozenset[Right]:
        if account_id == mailbox_account_id:
            return ALL_RIGHTS
        head = conn.scalar(select(OrgUnit.head_account_id).where(OrgUnit.account_id == mailbox_account_id))
        if head is not None and head == account_id:
            return ALL_RIGHTS
        text = conn.scalar(select(OrgDelegation.rights).where(
            OrgDelegation.unit_account_id == mailbox_account_id, OrgDelegation.delegate_account_id == account_id))
        return parse_rights(text) if text else frozenset()

    def rights_for(self, account_id: int, mailbox_account_id: int) -> frozenset[Right]:
        """What ``account_id`` may do in ``mailbox_account_id`` (empty: nothing, R-ACC-1)."""
        with self.reading() as conn:
            return self._rights(conn, account_id, mailbox_account_id)

    def check_right(self, account_id: int, mailbox_account_id: int, right: Right) -> None:
        """``NoPerm`` unless the account holds ``right`` there (IMAP: ``NO [NOPERM]``)."""
        if right not in self.rights_for(account_id, mailbox_account_id):
            raise NoPerm(f"account {account_id} lacks {right.value} on mailbox {mailbox_account_id}")

    def resolve_login(
        self, authcid_account: api.Account, authzid_address: str | None, *, via: str = ""
    ) -> tuple[api.Account, frozenset[Right]]:
        """SASL PLAIN authorization identity (RFC 4616): after ``authcid_account`` proved its
        password, the session acts as ``authzid_address``. Empty or own address → itself with
        every right. A unit mailbox it heads or is delegated with READ → the unit account and the
        rights; the access is recorded (action "login", detail ``via``). Anything else (personal
        or group mailbox, unknown address, unit it has no READ on, unit not in a login state) →
        ``NoPerm``, the same for each so the answer reveals nothing."""
        if not authzid_address:
            return authcid_account, ALL_RIGHTS
        with self.reading() as conn:
            target = self._acct_by_address(conn, authzid_address)
            if target is not None and target.id == authcid_account.id:
                return authcid_account, ALL_RIGHTS
            rights = self._rights(conn, authcid_account.id, target.id) if target else frozenset()
        if (target is None or target.kind is not api.AccountKind.UNIT or target.state not in api.LOGIN_STATES
                or Right.READ not in rights):
            raise NoPerm(f"{authcid_account.address} may not act as {authzid_address}")
        self.record_access(authcid_account.id, target.id, "login", via)
        return target, rights

    def mailboxes_visible_to(self, account_id: int) -> list[SharedMailbox]:
        """The unit mailboxes ``account_id`` heads or is delegated, for the IMAP shared namespace
        (RFC 2342): each unit's folders appear under ``path`` + "/" + folder name."""
        result = []
        with self.reading() as conn:
            headed = conn.execute(select(OrgUnit).where(OrgUnit.head_account_id == account_id))
            grants = [(r, ALL_RIGHTS) for r in headed]
            for unit_id, text in conn.execute(
                select(OrgUnit.id, OrgDelegation.rights)
                .join(OrgDelegation, OrgDelegation.unit_account_id == OrgUnit.account_id)
                .where(OrgDelegation.delegate_account_id == account_id)
            ).all():
                row = conn.execute(select(OrgUnit).where(OrgUnit.id == unit_id)).one()
                grants.append((row, parse_rights(text)))
            for row, rights in grants:
                unit = self._unit(conn, row)
                if unit.account.state in api.LOGIN_STATES:
                    result.append(SharedMailbox(unit.account, unit.shared_name, rights))
        return sorted(result, key=lambda s: s.path)

    def may_send_as(self, account_id: int, address: str) -> bool:
        """Submission: may ``account_id`` use ``address`` as its sender? Its own addresses, and
        the addresses of unit mailboxes it heads or holds SEND_AS on (R-BOX-2, R-ACC-1)."""
        with self.reading() as conn:
            target = self._acct_by_address(conn, address)
            if target is None:
                return False
            if target.id == account_id:
                return True
            return target.kind is api.AccountKind.UNIT and Right.SEND_AS in self._rights(conn, account_id, target.id)

    # -- audit --------------------------------------------------------------------------------
    def record_access(
        self, actor_account_id: int | None, mailbox_account_id: int, action: str, detail: str = ""
    ) -> None:
        """Record one access to a mailbox by someone other than its owner (who, when, what,
        which mailbox). Front ends call it for delegate logins, SELECT/EXAMINE of a shared unit
        mailbox, flag changes, expunges, appends and send-as. Durable when it returns."""
        action = action.strip().lower()[:32]
        if not action:
            raise Invalid("empty audit action")

        def job(conn: Connection, _changes: list) -> None:
            self._audit(conn, self._acct(conn, actor_account_id), self._acct(conn, mailbox_account_id), action, detail)

        self.run_write(job)

    def audit_log(self, mailbox_account_id: int | None = None, *, limit: int = 100) -> list[AuditEntry]:
        """Newest first; all mailboxes when ``mailbox_account_id`` is None."""
        stmt = select(OrgAudit).order_by(OrgAudit.id.desc()).limit(limit)
        if mailbox_account_id is not None:
            stmt = stmt.where(OrgAudit.mailbox_account_id == mailbox_account_id)
        with self.reading() as conn:
            return [AuditEntry(r.at.replace(tzinfo=_dt.UTC), r.actor, r.actor_account_id, r.mailbox,
                               r.mailbox_account_id, r.action, r.detail) for r in conn.execute(stmt)]

    # -- handover (R-BOX-3) -------------------------------------------------------------------
    def handover(
        self, unit_code: str, new_head_account_id: int, new_password_hash: str, *,
        revoke_delegations: bool = False, actor_account_id: int | None = None,
    ) -> Unit:
        """Make ``new_head_account_id`` the head and owner of the unit mailbox and give it a new
        password, in one transaction with its audit record. Messages, folders, flags, UIDs and
        addresses are not touched: nothing is lost. The mailbox must change that password at
        first login (R-PASS-1) unless it is locked, which it stays. Delegations stay (they are the
        unit's) unless ``revoke_delegations``; a delegation of the new head itself ends."""

        def job(conn: Connection, _changes: list) -> int:
            row = conn.execute(select(OrgUnit).where(OrgUnit.code == unit_code.strip().lower())).first()
            if row is None:
                raise NotFound(f"unit {unit_code}")
            head = self._check_head(conn, new_head_account_id)
            if row.head_account_id == head.id:
                raise Invalid(f"{head.address} already heads unit {row.code}")
            old = self._acct(conn, row.head_account_id)
            mailbox = self._acct(conn, row.account_id)
            values: dict = {"password_hash": new_password_hash, "password_changed_at": _now()}
            if mailbox.state in api.LOGIN_STATES:
                values["state"] = str(api.AccountState.MUST_CHANGE_PASSWORD)
            conn.execute(update(m.Account).where(m.Account.id == row.account_id).values(**values))
            conn.execute(update(OrgUnit).where(OrgUnit.id == row.id).values(head_account_id=head.id))
            gone = delete(OrgDelegation).where(OrgDelegation.unit_account_id == row.account_id)
            if not revoke_delegations:
                gone = gone.where(OrgDelegation.delegate_account_id == head.id)
            conn.execute(gone)
            self._audit(conn, self._acct(conn, actor_account_id), mailbox, "handover",
                        f"from {old.address if old else '-'} to {head.address}"
                        + ("; delegations revoked" if revoke_delegations else ""))
            return row.id

        unit_id = self.run_write(job)
        unit = self.unit_by_id(unit_id)
        assert unit is not None
        return unit

    # -- groups (R-BOX-4) ---------------------------------------------------------------------
    def add_group(self, address: str, display_name: str, *, send_policy: SendPolicy = SendPolicy.DOMAINS) -> Group:
        """A group mailbox: an account of kind "group" (no password, no login) and its policy."""
        name = _nfc(display_name)
        if not name:
            raise Invalid("a group needs a name")

        def job(conn: Connection, _changes: list) -> int:
            account_id = self._insert_account(conn, self._check_local(conn, address), name, None,
                                              api.AccountKind.GROUP, api.AccountState.ACTIVE)
            conn.execute(insert(OrgGroup).values(account_id=account_id, send_policy=str(SendPolicy(send_policy))))
            self._audit(conn, None, self._acct(conn, account_id), "group-add", f"policy={send_policy}")
            return account_id

        account_id = self.run_write(job)
        group = self.get_group(str(account_id))
        assert group is not None
        return group

    def _group_account(self, conn: Connection, group: str | int) -> api.Account | None:
        account = self._acct(conn, int(group)) if isinstance(group, int) or str(group).isdigit() else \
            self._acct_by_address(conn, str(group))
        return account if account is not None and account.kind is api.AccountKind.GROUP else None

    def get_group(self, group: str | int) -> Group | None:
        """By address (any of the group's) or account id."""
        with self.reading() as conn:
            account = self._group_account(conn, group)
            if account is None:
                return None
            policy = conn.scalar(select(OrgGroup.send_policy).where(OrgGroup.account_id == account.id))
            members = [self._account(r) for r in conn.execute(
                select(m.Account).join(OrgGroupMember, OrgGroupMember.member_account_id == m.Account.id)
                .where(OrgGroupMember.group_account_id == account.id).order_by(m.Account.address))]
        return Group(account, SendPolicy(policy or SendPolicy.DOMAINS), tuple(members))

    def list_groups(self) -> list[Group]:
        with self.reading() as conn:
            ids = list(conn.scalars(select(m.Account.id).where(m.Account.kind == str(api.AccountKind.GROUP))
                                    .order_by(m.Account.address)))
        return [g for g in (self.get_group(i) for i in ids) if g is not None]

    def set_send_policy(self, group_account_id: int, policy: SendPolicy) -> None:
        policy = SendPolicy(policy)

        def job(conn: Connection, _changes: list) -> None:
            if self._group_account(conn, group_account_id) is None:
                raise NotFound(f"group {group_account_id}")
            conn.execute(delete(OrgGroup).where(OrgGroup.account_id == group_account_id))
            conn.execute(insert(OrgGroup).values(account_id=group_account_id, send_policy=str(policy)))

        self.run_write(job)

    @staticmethod
    def _children(conn: Connection, group_ids: Sequence[int]) -> list[tuple[int, int, str, str]]:
        """(group id, member id, member kind, member state) for the direct members of groups."""
        return [tuple(r) for r in conn.execute(
            select(OrgGroupMember.group_account_id, m.Account.id, m.Account.kind, m.Account.state)
            .join(m.Account, m.Account.id == OrgGroupMember.member_account_id)
            .where(OrgGroupMember.group_account_id.in_(list(group_ids)))
            .order_by(OrgGroupMember.group_account_id, m.Account.address))]

    def _loop_path(self, conn: Connection, group_id: int, member_id: int) -> list[int] | None:
        """The path member → … → group if adding member to group would close a loop."""
        if member_id == group_id:
            return [group_id]
        parents = {member_id: None}
        frontier = [member_id]
        while frontier:
            following = []
            for parent, child, kind, _state in self._children(conn, frontier):
                if kind != api.AccountKind.GROUP or child in parents:
                    continue
                parents[child] = parent
                if child == group_id:
                    path, node = [], child
                    while node is not None:
                        path.append(node)
                        node = parents[node]
                    return list(reversed(path))
                following.append(child)
            frontier = following
        return None

    def add_member(self, group_account_id: int, member_account_id: int) -> None:
        """Add an account (personal, unit or group) to a group. A member that would make the
        group contain itself is refused with the loop's path (``Invalid``); ``Exists`` if already
        a member."""
        self.add_members(group_account_id, [member_account_id])

    def add_members(self, group_account_id: int, member_account_ids: Sequence[int]) -> None:
        """``add_member`` for many accounts in ONE transaction: all are added or none."""

        def job(conn: Connection, _changes: list) -> None:
            group = self._group_account(conn, group_account_id)
            if group is None:
                raise NotFound(f"group {group_account_id}")
            current = set(conn.scalars(select(OrgGroupMember.member_account_id)
                                       .where(OrgGroupMember.group_account_id == group.id)))
            added, names = [], []
            for member_id in dict.fromkeys(member_account_ids):
                member = self._acct(conn, member_id)
                if member is None:
                    raise NotFound(f"account {member_id}")
                loop = self._loop_path(conn, group.id, member.id) if member.kind is api.AccountKind.GROUP else None
                if loop is not None:
                    path = [group.address] + [self._acct(conn, i).address for i in loop]
                    raise Invalid("group loop: " + " → ".join(path))
                if member.id in current:
                    raise Exists(f"{member.address} is already a member of {group.address}")
                if member.kind is api.AccountKind.GROUP:  # later loop checks must see this edge
                    conn.execute(insert(OrgGroupMember).values(group_account_id=group.id, member_account_id=member.id))
                else:
                    added.append(member.id)
                current.add(member.id)
                names.append(member.address)
            if names:
                self._audit(conn, None, group, "member-add", ", ".join(names))
            if added:
                conn.execute(insert(OrgGroupMember),
                             [{"group_account_id": group.id, "member_account_id": i} for i in added])

        self.run_write(job)

    def remove_member(self, group_account_id: int, member_account_id: int) -> None:
        def job(conn: Connection, _changes: list) -> None:
            group = self._group_account(conn, group_account_id)
            if group is None:
                raise NotFound(f"group {group_account_id}")
            if not conn.execute(delete(OrgGroupMember).where(
                    OrgGroupMember.group_account_id == group.id,
                    OrgGroupMember.member_account_id == member_account_id)).rowcount:
                raise NotFound("not a member")
            member = self._acct(conn, member_account_id)
            self._audit(conn, None, group, "member-remove", member.address if member else str(member_account_id))

        self.run_write(job)

    def expand_recipients(self, group: str | int) -> list[int]:
        """Account ids that receive a message sent to the group (R-BOX-4): nested groups expanded
        once each, every account once, in a stable order; members that cannot receive (revoked,
        deleted) left out. Empty list: the group has no one to deliver to (or is not a group, or
        cannot receive) → the caller refuses the recipient. A loop (which ``add_member`` refuses)
        is cut rather than followed."""
        with self.reading() as conn:
            top = self._group_account(conn, group)
            if top is None or top.state not in api.RECEIVE_STATES:
                return []
            seen_groups, result, seen = {top.id}, [], set()
            frontier = [top.id]
            receive = {str(s) for s in api.RECEIVE_STATES}
            while frontier:
                following = []
                for _parent, child, kind, state in self._children(conn, frontier):
                    if state not in receive:
                        continue
                    if kind == api.AccountKind.GROUP:
                        if child not in seen_groups:
                            seen_groups.add(child)
                            following.append(child)
                    elif child not in seen:
                        seen.add(child)
                        result.append(child)
                frontier = following
        return result

    def expand_accounts(self, group: str | int) -> list[api.Account]:
        """``expand_recipients`` as Account values (what smtp.delivery.targets_for takes)."""
        ids = self.expand_recipients(group)
        found = self.accounts.get_accounts_by_ids(ids)  # a few queries for a 1,000-member group
        return [found[i] for i in ids if i in found]

    def may_send_to_group(self, group: str | int, sender_address: str) -> bool:
        """The group's send policy applied to an envelope sender (R-BOX-4). The null sender
        ``<>`` passes only "anyone". On the MX listener the sender is unauthenticated: "domains"
        and "members" there are as strong as the sender checks (SPF/DKIM) in front of them."""
        with self.reading() as conn:
            account = self._group_account(conn, group)
            if account is None:
                return False
            policy = SendPolicy(conn.scalar(select(OrgGroup.send_policy).where(OrgGroup.account_id == account.id))
                                or SendPolicy.DOMAINS)
            if policy is SendPolicy.ANYONE:
                return True
            if not sender_address or "@" not in sender_address:
                return False
            domain = sender_address.rpartition("@")[2].lower().rstrip(".")
            if policy is SendPolicy.DOMAINS:
                return conn.scalar(select(m.Domain.id).where(m.Domain.name == domain)) is not None
            sender = self._acct_by_address(conn, sender_address)
        return sender is not None and sender.id in self.expand_recipients(account.id)

    # -- people: profiles and bulk creation ---------------------------------------------------
    def taken_local_parts(self, domain: str) -> set[str]:
        """Local parts used in ``domain`` by any account, revoked ones included (R-ADDR-*)."""
        suffix = "@" + domain.lower().rstrip(".")
        with self.reading() as conn:
            rows = conn.scalars(select(m.Address.address).where(m.Address.address.endswith(suffix)))
            return {a[: -len(suffix)] for a in rows}

    def person_keys(self) -> set[str]:
        with self.reading() as conn:
            return set(conn.scalars(select(AccountProfile.person_key)))

    def create_people(self, people: Sequence[NewPerson]) -> list[api.Account]:
        """Create personal accounts with their profiles in ONE transaction: all or nothing.
        ``Exists`` (nothing created) if an address is taken or a person is already registered."""

        def job(conn: Connection, _changes: list) -> list[int]:
            ids = []
            for p in people:
                key = person_key(p.display_name, p.unit_id, p.mobile or p.phone)
                if conn.scalar(select(AccountProfile.account_id).where(AccountProfile.person_key == key)):
                    raise Exists(f"{p.display_name} is already registered in this unit")
                account_id = self._insert_account(conn, p.address, _nfc(p.display_name), p.password_hash,
                                                  api.AccountKind.PERSONAL, p.state)
                conn.execute(insert(AccountProfile).values(account_id=account_id, unit_id=p.unit_id, title=p.title,
                                                           phone=p.phone, mobile=p.mobile, person_key=key))
                ids.append(account_id)
            return ids

        ids = self.run_write(job)
        with self.reading() as conn:
            return [self._acct(conn, i) for i in ids]

    def set_profile(self, account_id: int, *, unit_id: int | None = None, title: str = "", phone: str = "",
                    mobile: str = "") -> None:
        def job(conn: Connection, _changes: list) -> None:
            account = self._acct(conn, account_id)
            if account is None:
                raise NotFound(f"account {account_id}")
            conn.execute(delete(AccountProfile).where(AccountProfile.account_id == account_id))
            conn.execute(insert(AccountProfile).values(
                account_id=account_id, unit_id=unit_id, title=_nfc(title), phone=phone, mobile=mobile,
                person_key=person_key(account.display_name, unit_id, mobile or phone)))

        self.run_write(job)

    def get_profile(self, account_id: int) -> Profile | None:
        with self.reading() as conn:
            r = conn.execute(select(AccountProfile).where(AccountProfile.account_id == account_id)).first()
        return Profile(r.account_id, r.unit_id, r.title, r.phone, r.mobile) if r else None

    def directory_rows(self) -> list[DirectoryRow]:
        """Every unit, group and personal account that can receive mail (R-DIR-1), unsorted."""
        units = {u.id: u for u in self.list_units()}
        unit_by_account = {u.account.id: u for u in units.values()}
        receive = [str(s) for s in api.RECEIVE_STATES]
        with self.reading() as conn:
            accounts = [self._account(r) for r in conn.execute(
                select(m.Account).where(m.Account.state.in_(receive)))]
            addresses: dict[int, list[str]] = {}
            for address, account_id in conn.execute(select(m.Address.address, m.Address.account_id)):
                addresses.setdefault(account_id, []).append(address)
            profiles = {r.account_id: r for r in conn.execute(select(AccountProfile))}
        rows = []
        for a in accounts:
            others = sorted(x for x in addresses.get(a.id, []) if x != a.address)
            profile = profiles.get(a.id)
            if a.id in unit_by_account:
                path = unit_by_account[a.id].path
            elif profile is not None and profile.unit_id in units:
                path = units[profile.unit_id].path
            else:
                path = ()
            rows.append(DirectoryRow(a, (a.address, *others), path, profile.title if profile else "",
                                     profile.phone if profile else ""))
        return rows
