"""The Sieve role (storage.api.SieveScripts): scripts per account, at most one active, the
forwarding of personal accounts, and the vacation replies sent (RFC 5230). Reads through
``reading()``, each write one writer job."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, and_, delete, insert, select, update

from storage import api
from storage.errors import Exists, Invalid, NotFound
from storage.models import sieve_forwards as f, sieve_scripts as t, sieve_vacation as v
from storage.sql.role import Role
from storage.sqlrows import _utcnow


class SqlSieve(Role):
    """Thread-safe; every method may block (call it off the event loop) but ``peek_holders``."""

    #: SQLite: (recipient cache clears when read, accounts with a filter), see ``peek_holders``
    _holders: tuple[int, frozenset[int]] | None = None

    def holders(self) -> frozenset[int]:
        cache = self._recipients
        mark = cache.clears if cache is not None else 0  # before the read: a change after it invalidates
        with self.reading() as conn:
            ids = frozenset(conn.scalars(select(t.c.account_id).where(t.c.active.is_(True)).union(select(f.c.account_id))))
        if cache is not None:
            self._holders = (mark, ids)
        return ids

    def peek_holders(self) -> frozenset[int] | None:
        # Valid while no commit other than deliveries happened since it was read: every such
        # commit (of this process or another) clears the recipient cache, and data_version
        # equal to the mark the writer last vouched at says every commit was accounted for.
        cache, held = self._recipients, self._holders
        if cache is None or held is None or held[0] != cache.clears or self._closing.is_set():
            return None
        try:
            return held[1] if self.core._watched_version() == self.core._valid_at else None
        except Exception:  # noqa: BLE001 - the read in a thread will say what is wrong
            return None

    def list_scripts(self, account_id: int) -> list[api.SieveScript]:
        with self.reading() as conn:
            rows = conn.execute(select(t.c.name, t.c.active, t.c.content).where(t.c.account_id == account_id))
            return sorted((api.SieveScript(n, bool(a), len(c.encode())) for n, a, c in rows), key=lambda s: s.name)

    def get_script(self, account_id: int, name: str) -> str | None:
        with self.reading() as conn:
            return conn.scalar(select(t.c.content).where(t.c.account_id == account_id, t.c.name == name))

    def put_script(self, account_id: int, name: str, content: str) -> None:
        def job(conn: Connection, _changes: list) -> None:
            key = and_(t.c.account_id == account_id, t.c.name == name)
            if conn.execute(update(t).where(key).values(content=content, updated_at=_utcnow())).rowcount == 0:
                conn.execute(insert(t).values(account_id=account_id, name=name, content=content, active=False,
                                              updated_at=_utcnow()))  # fmt: skip

        self.run_write(job)

    def delete_script(self, account_id: int, name: str) -> None:
        def job(conn: Connection, _changes: list) -> None:
            active = conn.scalar(select(t.c.active).where(t.c.account_id == account_id, t.c.name == name))
            if active is None:
                raise NotFound(f"no script {name!r}")
            if active:
                raise Invalid(f"script {name!r} is active")
            conn.execute(delete(t).where(t.c.account_id == account_id, t.c.name == name))

        self.run_write(job)

    def rename_script(self, account_id: int, old: str, new: str) -> None:
        def job(conn: Connection, _changes: list) -> None:
            names = set(conn.scalars(select(t.c.name).where(t.c.account_id == account_id, t.c.name.in_([old, new]))))
            if old not in names:
                raise NotFound(f"no script {old!r}")
            if new in names and new != old:
                raise Exists(f"script {new!r} exists")
            conn.execute(update(t).where(t.c.account_id == account_id, t.c.name == old).values(name=new))

        self.run_write(job)

    def set_active(self, account_id: int, name: str | None) -> None:
        def job(conn: Connection, _changes: list) -> None:
            if name is not None and conn.scalar(select(t.c.name).where(t.c.account_id == account_id, t.c.name == name)) is None:
                raise NotFound(f"no script {name!r}")
            conn.execute(update(t).where(t.c.account_id == account_id, t.c.active.is_(True)).values(active=False))
            if name is not None:
                conn.execute(update(t).where(t.c.account_id == account_id, t.c.name == name).values(active=True))

        self.run_write(job)

    def active_scripts(self, account_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        if not account_ids:
            return {}
        with self.reading() as conn:
            rows = conn.execute(select(t.c.account_id, t.c.name, t.c.content)
                                .where(t.c.account_id.in_(list(account_ids)), t.c.active.is_(True)))  # fmt: skip
            return {a: (n, c) for a, n, c in rows}

    def set_forward(self, account_id: int, forward: api.Forward | None) -> None:
        def job(conn: Connection, _changes: list) -> None:
            conn.execute(delete(f).where(f.c.account_id == account_id))
            if forward is not None:
                conn.execute(insert(f).values(account_id=account_id, targets="\n".join(forward.targets), keep=forward.keep,
                                              updated_at=_utcnow()))  # fmt: skip

        self.run_write(job)

    def forwards(self, account_ids: Sequence[int]) -> dict[int, api.Forward]:
        if not account_ids:
            return {}
        with self.reading() as conn:
            rows = conn.execute(select(f.c.account_id, f.c.targets, f.c.keep).where(f.c.account_id.in_(list(account_ids))))
            return {a: api.Forward(tuple(x for x in targets.split("\n") if x), bool(keep)) for a, targets, keep in rows}

    def vacation_due(self, account_id: int, sender: str, handle: str, now: float, period: float) -> bool:
        sender = sender.lower()

        def job(conn: Connection, _changes: list) -> bool:
            key = and_(v.c.account_id == account_id, v.c.sender == sender, v.c.handle == handle)
            sent = conn.scalar(select(v.c.sent_at).where(key))
            if sent is not None and now - sent < period:
                return False
            if sent is None:
                conn.execute(insert(v).values(account_id=account_id, sender=sender, handle=handle, sent_at=now))
            else:
                conn.execute(update(v).where(key).values(sent_at=now))
            return True

        job.directory = "neutral"  # type: ignore[attr-defined]  # changes no account, script or address (recipient cache)
        return self.run_write(job)
