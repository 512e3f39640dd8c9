"""The announcements role (storage.api.Announcements): notices scheduled with ``announce --at``
(R-OPS-3). ``claim_due`` moves a due notice from pending to sending in one UPDATE per row, so of
several server processes exactly one delivers it; a process that dies after claiming leaves it
``sending`` (listed by ``announce --list``), never delivered twice."""

from __future__ import annotations

import datetime as _dt

from sqlalchemy import Connection, insert, select, update

from storage.api.announcements import Scheduled
from storage.models import announcements as t
from storage.sql.role import Role


def _naive(when: _dt.datetime) -> _dt.datetime:
    return when.astimezone(_dt.UTC).replace(tzinfo=None)


def _row(r) -> Scheduled:
    return Scheduled(r.id, r.due_at.replace(tzinfo=_dt.UTC), r.unit_code, r.subject, bytes(r.raw), r.state, r.delivered)


class Announcements(Role):
    def schedule(self, due_at: _dt.datetime, subject: str, raw: bytes, unit_code: str | None = None) -> int:
        def job(conn: Connection, _changes: list) -> int:
            return conn.execute(insert(t).values(due_at=_naive(due_at), subject=subject, raw=raw,
                                                 unit_code=unit_code)).inserted_primary_key[0]

        return self.run_write(job)

    def claim_due(self, now: _dt.datetime) -> list[Scheduled]:
        def job(conn: Connection, _changes: list) -> list[Scheduled]:
            due = conn.execute(select(t).where(t.c.state == "pending", t.c.due_at <= _naive(now))).all()
            return [_row(r) for r in due
                    if conn.execute(update(t).where(t.c.id == r.id, t.c.state == "pending").values(state="sending")).rowcount == 1]

        return self.run_write(job)

    def finish(self, announcement_id: int, delivered: int) -> None:
        self.run_write(lambda conn, _c: conn.execute(
            update(t).where(t.c.id == announcement_id).values(state="sent", delivered=delivered)))

    def listing(self) -> list[Scheduled]:
        with self.reading() as conn:
            return [_row(r) for r in conn.execute(select(t).order_by(t.c.due_at, t.c.id))]
