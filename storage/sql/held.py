"""The held messages role (storage.api.HeldMessages): the review queue of the classified-document
guard (R-SEC-3), table ``held_messages``. Release hands the message to the same paths as a
submission (local delivery, the outbound queue) and removes the row in one commit each."""

from __future__ import annotations

import datetime as _dt

from sqlalchemy import delete, insert, select

from storage.api import BlobRef
from storage.api.held import HeldMessage
from storage.errors import Invalid, NotFound
from storage.models import held_messages as t
from storage.sql.role import Role


def _row(r) -> HeldMessage:
    return HeldMessage(
        r.id, r.blob_sha, r.size, r.sender, r.account_id, tuple(int(x) for x in r.local_ids.split()),
        tuple(x for x in r.remote.split("\n") if x), r.reason, r.part, r.detail, r.tx_id,
        r.created_at.replace(tzinfo=_dt.UTC),
    )  # fmt: skip


class HeldMessages(Role):
    """Thread-safe; every method may block (call it off the event loop)."""

    def hold(self, blob: BlobRef, sender: str, account_id: int | None, local_ids: list[int] | tuple[int, ...],
             remote: list[str] | tuple[str, ...], *, reason: str, part: str, detail: str, tx_id: str | None = None) -> int:
        """Keep ``blob`` (from ``messages.put_blob``) for review; the id once durably committed."""
        if not local_ids and not remote:
            raise Invalid("no recipients")
        when = _dt.datetime.now(_dt.UTC).replace(tzinfo=None)
        store = self

        def job(conn, _changes) -> int:
            store._ensure_blob(conn, blob)
            return conn.execute(insert(t).values(
                blob_sha=blob.sha256, size=blob.size, sender=sender, account_id=account_id,
                local_ids=" ".join(str(i) for i in dict.fromkeys(local_ids)), remote="\n".join(dict.fromkeys(remote)),
                reason=reason[:16], part=_clean(part), detail=_clean(detail), tx_id=tx_id, created_at=when,
            ).returning(t.c.id)).scalar_one()  # fmt: skip

        return self.run_write(job)

    def list(self) -> list[HeldMessage]:
        with self.reading() as conn:
            return [_row(r) for r in conn.execute(select(t).order_by(t.c.id))]

    def get(self, held_id: int) -> HeldMessage:
        with self.reading() as conn:
            r = conn.execute(select(t).where(t.c.id == held_id)).first()
        if r is None:
            raise NotFound(f"held message {held_id}")
        return _row(r)

    def remove(self, held_id: int) -> None:
        """Forget a held message (after its release, or deleted by the operator)."""

        def job(conn, _changes) -> None:
            if conn.execute(delete(t).where(t.c.id == held_id)).rowcount == 0:
                raise NotFound(f"held message {held_id}")

        self.run_write(job)


def _clean(text: str) -> str:
    """Storable text (PostgreSQL refuses NUL; no lone surrogates)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")[:2000]
