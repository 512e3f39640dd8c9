"""The accounts role (storage.api.Accounts): domains and accounts."""

from __future__ import annotations

import datetime as _dt
from typing import Sequence

from sqlalchemy import Connection, delete, insert, select, update

from storage import api, models as m
from storage.errors import Exists, Invalid, NotFound
from storage.sql.role import Role
from storage.sqlrows import _to_db, _utcnow


class SqlAccounts(Role):
    """See storage.api.Accounts."""

    # -- domains --------------------------------------------------------------------------------
    def add_domain(self, name: str) -> None:
        name = name.strip().lower().rstrip(".")
        if not name or "@" in name:
            raise Invalid(f"invalid domain {name!r}")

        def job(conn: Connection, _changes: list) -> None:
            if conn.scalar(select(m.Domain.id).where(m.Domain.name == name)) is None:
                conn.execute(insert(m.Domain).values(name=name))

        self._writer.run(job)

    def list_domains(self) -> list[str]:
        with self._reading() as conn:
            return list(conn.scalars(select(m.Domain.name).order_by(m.Domain.name)))

    def is_local_domain(self, name: str) -> bool:
        with self._reading() as conn:
            return conn.scalar(select(m.Domain.id).where(m.Domain.name == name.lower().rstrip("."))) is not None

    def create_account(
        self,
        address: str,
        display_name: str,
        password_hash: str | None,
        *,
        kind: api.AccountKind = api.AccountKind.PERSONAL,
        state: api.AccountState = api.AccountState.MUST_CHANGE_PASSWORD,
    ) -> api.Account:
        address = self._normalise_address(address)

        def job(conn: Connection, _changes: list) -> int:
            if conn.scalar(select(m.Address.account_id).where(m.Address.address == address)) is not None:
                raise Exists(f"address {address} is taken")
            now = _utcnow()
            account_id = conn.execute(
                insert(m.Account)
                .values(
                    address=address,
                    display_name=display_name,
                    kind=str(kind),
                    state=str(state),
                    password_hash=password_hash,
                    created_at=now,
                    password_changed_at=now if password_hash else None,
                    used_bytes=0,
                    used_messages=0,
                    last_uidvalidity=0,
                )
                .returning(m.Account.id)
            ).scalar_one()
            conn.execute(insert(m.Address).values(address=address, account_id=account_id))
            for name, special_use in api.DEFAULT_FOLDERS:
                self._insert_folder(conn, account_id, name, special_use)
            self._subscribe_defaults(conn, account_id)
            return account_id

        account_id = self._writer.run(job)
        account = self.get_account_by_id(account_id)
        assert account is not None
        return account

    # Account look-ups run at every RCPT, every quota check and every login: plain SQL on a pooled
    # DB-API cursor, as storage/sql/place.py does for delivery (the SQLAlchemy statement path cost ~0.4 ms
    # of GIL time per call under the SMTP ingest benchmark; this costs ~40 us).
    _ACCOUNT_COLUMNS = (
        "a.id, a.address, a.display_name, a.kind, a.state, a.password_hash, a.created_at, "
        "a.password_changed_at, a.last_login_at, a.quota_bytes, a.used_bytes, a.used_messages"
    )

    def _account_tuple(self, row: tuple) -> api.Account:
        return api.Account(
            id=row[0], address=row[1], display_name=row[2], kind=api.AccountKind(row[3]),
            state=api.AccountState(row[4]), password_hash=row[5], created_at=self._db_time(row[6]),
            password_changed_at=self._db_time(row[7]), last_login_at=self._db_time(row[8]),
            quota_bytes=row[9], used_bytes=row[10], used_messages=row[11],
        )  # fmt: skip

    def _db_time(self, value) -> _dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite keeps DateTime as text
            value = _dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=_dt.UTC)

    def _account_query(self, where: str, arg) -> api.Account | None:
        sql = f"SELECT {self._ACCOUNT_COLUMNS} FROM {where}"
        if not self._sqlite:
            sql = sql.replace("?", "%s")
        with self._raw_read() as cur:
            cur.execute(sql, (arg,))
            row = cur.fetchone()
        return self._account_tuple(row) if row else None

    def get_account(self, address: str) -> api.Account | None:
        try:
            address = self._normalise_address(address)
        except Invalid:
            return None
        cache = self._recipients
        generation = cache.generation if cache is not None else 0
        account = self._account_query("addresses d JOIN accounts a ON a.id = d.account_id WHERE d.address = ?", address)
        if account is not None and cache is not None:
            cache.put(address, account, generation)
        return account

    def peek_account(self, address: str) -> api.Account | None:
        if self._recipients is None:
            return None
        try:
            return self._cached_account(self._normalise_address(address))
        except Invalid:
            return None

    def get_account_by_id(self, account_id: int) -> api.Account | None:
        return self._account_query("accounts a WHERE a.id = ?", account_id)

    def get_accounts_by_ids(self, account_ids: Sequence[int]) -> dict[int, api.Account]:
        ids = list(dict.fromkeys(account_ids))
        found: dict[int, api.Account] = {}
        mark = "?" if self._sqlite else "%s"
        with self._raw_read() as cur:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                cur.execute(f"SELECT {self._ACCOUNT_COLUMNS} FROM accounts a WHERE a.id IN "
                            f"({', '.join([mark] * len(chunk))})", chunk)
                for row in cur.fetchall():
                    found[row[0]] = self._account_tuple(row)
        return found

    def list_accounts(self) -> list[api.Account]:
        with self._reading() as conn:
            return [self._account(r) for r in conn.execute(select(m.Account).order_by(m.Account.address))]

    def _update_account(self, account_id: int, **values) -> None:
        def job(conn: Connection, _changes: list) -> None:
            if conn.execute(update(m.Account).where(m.Account.id == account_id).values(**values)).rowcount == 0:
                raise NotFound(f"account {account_id}")

        self._writer.run(job)

    def set_password(
        self, account_id: int, password_hash: str, *, state: api.AccountState | None = None, rehash: bool = False
    ) -> None:
        values: dict = {"password_hash": password_hash}
        if not rehash:
            values["password_changed_at"] = _utcnow()
        if state is not None:
            values["state"] = str(state)
        if rehash:
            self._update_account(account_id, **values)
            return

        def job(conn: Connection, _changes: list) -> None:
            old = conn.scalar(select(m.Account.password_hash).where(m.Account.id == account_id))
            if conn.execute(update(m.Account).where(m.Account.id == account_id).values(**values)).rowcount == 0:
                raise NotFound(f"account {account_id}")
            if old:  # the one it replaces joins the history (passwords.history)
                conn.execute(insert(m.password_history).values(account_id=account_id, password_hash=old,
                                                                replaced_at=values["password_changed_at"]))

        self._writer.run(job)

    def password_history(self, account_id: int, limit: int) -> list[str]:
        """The current hash and up to ``limit - 1`` earlier ones, newest first."""
        if limit <= 0:
            return []
        with self._reading() as conn:
            current = conn.scalar(select(m.Account.password_hash).where(m.Account.id == account_id))
            earlier = list(conn.scalars(select(m.password_history.c.password_hash)
                                        .where(m.password_history.c.account_id == account_id)
                                        .order_by(m.password_history.c.id.desc()).limit(limit)))
        return (([current] if current else []) + earlier)[:limit]

    def set_state(self, account_id: int, state: api.AccountState) -> None:
        self._update_account(account_id, state=str(state))

    def record_login(self, account_id: int, when: _dt.datetime) -> None:
        self._update_account(account_id, last_login_at=_to_db(when))

    def delete_account(self, account_id: int) -> None:
        def job(conn: Connection, _changes: list) -> None:
            folder_ids = list(conn.scalars(select(m.Folder.id).where(m.Folder.account_id == account_id)))
            for folder_id in folder_ids:
                conn.execute(delete(m.Message).where(m.Message.folder_id == folder_id))
                conn.execute(delete(m.Expunged).where(m.Expunged.folder_id == folder_id))
            conn.execute(delete(m.Folder).where(m.Folder.account_id == account_id))
            conn.execute(delete(m.Address).where(m.Address.account_id == account_id))
            if conn.execute(delete(m.Account).where(m.Account.id == account_id)).rowcount == 0:
                raise NotFound(f"account {account_id}")

        self._writer.run(job)
