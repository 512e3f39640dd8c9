"""The queue role (storage.api.OutboundQueue): durable, shared by every server process.

One ``outbound_messages`` row per queued message (its body is a blob of the store, so the bytes
sent are the bytes submitted — signed S/MIME stays valid, R-SEC-2) and one ``outbound_recipients``
row per remote recipient, with its own state and retry schedule.

Recipient states: ``queued`` (waiting or being tried), ``bounce`` (failed for good, a DSN to the
sender is owed), ``failed`` (DSN done). Delivered recipients are removed; a message row goes when
none of its recipients is queued or owed a DSN.

Contract (storage/api/roles.py): synchronous, thread-safe, frozen dataclasses out; writes go
through the core's ``run_write`` and return after the durable commit, so ``enqueue`` returning means
the client may be told 250. Claiming: a claim sets a lease (``locked_until``); an item whose lease
ran out (its process died) is claimed again. On PostgreSQL several processes claim with
``SELECT … FOR UPDATE SKIP LOCKED``; on SQLite the one writer thread serialises claims.
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
from typing import Iterable, Sequence

from sqlalchemy import delete, func, insert, select, update

from storage.api import BlobRef
from storage.errors import Invalid, NotFound
from storage.sql.core import StoreCore
from storage.sql.role import Role
from storage.models import Blob, OutboundMessage, OutboundRecipient, TlsReportCount
from storage.api.queue import BOUNCE, FAILED, QUEUED, Claim, EnvelopeOptions, Outcome, QueuedMessage, QueuedRecipient, TlsCount


def _db(when: _dt.datetime | None) -> _dt.datetime:
    when = when or _dt.datetime.now(_dt.UTC)
    return when.astimezone(_dt.UTC).replace(tzinfo=None) if when.tzinfo else when


def _aware(when: _dt.datetime | None) -> _dt.datetime | None:
    return None if when is None else when.replace(tzinfo=_dt.UTC)


def _text(value: str | None) -> str:
    """Remote servers' words as storable text (PostgreSQL refuses NUL; no lone surrogates)."""
    return (value or "").replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")[:2000]


def _domain_of(address: str) -> str:
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain:
        raise Invalid(f"invalid recipient {address!r}")
    return domain.lower().rstrip(".")


def _recipient(row) -> QueuedRecipient:
    return QueuedRecipient(
        id=row.id, address=row.address, domain=row.domain, state=row.state, attempts=row.attempts,
        next_attempt_at=_aware(row.next_attempt_at), last_attempt_at=_aware(row.last_attempt_at),
        last_code=row.last_code, last_reply=row.last_reply, remote=row.remote, warned=bool(row.warned),
        notify=row.dsn_notify, orcpt=row.dsn_orcpt,
    )  # fmt: skip


def _message(row, recipients: Iterable) -> QueuedMessage:
    return QueuedMessage(
        id=row.id, blob_sha=row.blob_sha, sender=row.sender, size=row.size,
        created_at=_aware(row.created_at), tx_id=row.tx_id,
        recipients=tuple(_recipient(r) for r in recipients),
        ret=row.dsn_ret, envid=row.dsn_envid, requiretls=bool(row.requiretls),
    )  # fmt: skip


class OutboundQueue(Role):
    """See storage.api.OutboundQueue (and the module docstring)."""

    def __init__(self, core: StoreCore) -> None:
        super().__init__(core)

    # -- producers (submission) -------------------------------------------------------------------
    def enqueue(
        self,
        blob: BlobRef | str,
        sender: str,
        recipients: Sequence[str],
        *,
        tx_id: str | None = None,
        now: _dt.datetime | None = None,
        options: EnvelopeOptions | None = None,
    ) -> int:
        """Queue ``blob`` (a BlobRef from ``put_blob``, or the sha256 of a stored body) for
        ``recipients``; returns the message id once durably committed (then say 250).
        ``options``: the client's DSN parameters and REQUIRETLS, kept for the next hop."""
        return self.enqueue_soon(blob, sender, recipients, tx_id=tx_id, now=now, options=options).result()

    def enqueue_soon(
        self,
        blob: BlobRef | str,
        sender: str,
        recipients: Sequence[str],
        *,
        tx_id: str | None = None,
        now: _dt.datetime | None = None,
        options: EnvelopeOptions | None = None,
    ) -> concurrent.futures.Future:
        """``enqueue`` without waiting (an event loop awaits the future; no thread is parked)."""
        if not recipients:
            raise Invalid("no recipients")
        options = options or EnvelopeOptions()
        rows = [(address, _domain_of(address)) for address in dict.fromkeys(recipients)]
        when = _db(now)
        store = self

        def job(conn, _changes) -> int:
            if isinstance(blob, BlobRef):
                store._ensure_blob(conn, blob)
                sha, size = blob.sha256, blob.size
            else:
                sha = blob
                size = conn.scalar(select(Blob.size).where(Blob.sha256 == sha))
                if size is None:
                    raise NotFound(f"blob {sha}")
            message_id = conn.execute(
                insert(OutboundMessage)
                .values(blob_sha=sha, sender=sender, size=size, created_at=when, tx_id=tx_id, dsn_ret=options.ret,
                        dsn_envid=options.envid, requiretls=options.requiretls or None)
                .returning(OutboundMessage.id)
            ).scalar_one()
            conn.execute(
                insert(OutboundRecipient),
                [
                    {"message_id": message_id, "address": a, "domain": d, "state": QUEUED, "attempts": 0,
                     "next_attempt_at": when, "warned": False, "dsn_notify": options.for_recipient(a).notify,
                     "dsn_orcpt": options.for_recipient(a).orcpt}
                    for a, d in rows
                ],
            )  # fmt: skip
            return message_id

        return store._writer.submit(job)

    # -- the worker -----------------------------------------------------------------------------
    def claim(self, limit: int, *, owner: str, lease: int, now: _dt.datetime | None = None) -> list[Claim]:
        """Take up to ``limit`` due (message, domain) groups for ``lease`` seconds."""
        when = _db(now)
        until = when + _dt.timedelta(seconds=lease)
        sqlite = self.is_sqlite

        def job(conn, _changes) -> list[Claim]:
            due = (
                select(OutboundRecipient.id, OutboundRecipient.message_id, OutboundRecipient.domain)
                .where(
                    OutboundRecipient.state == QUEUED,
                    OutboundRecipient.next_attempt_at <= when,
                    (OutboundRecipient.locked_until.is_(None)) | (OutboundRecipient.locked_until < when),
                )
                .order_by(OutboundRecipient.next_attempt_at, OutboundRecipient.id)
                .limit(limit * 20)
            )
            if not sqlite:
                due = due.with_for_update(skip_locked=True)
            groups: dict[tuple[int, str], list[int]] = {}
            for row in conn.execute(due):
                key = (row.message_id, row.domain)
                if key in groups or len(groups) < limit:
                    groups.setdefault(key, []).append(row.id)
            ids = [i for group in groups.values() for i in group]
            if not ids:
                return []
            for part in _chunks(ids):
                conn.execute(
                    update(OutboundRecipient).where(OutboundRecipient.id.in_(part)).values(locked_until=until, locked_by=owner)
                )
            return self._load_claims(conn, groups)

        return self.run_write(job)

    @staticmethod
    def _load_claims(conn, groups: dict[tuple[int, str], list[int]]) -> list[Claim]:
        message_ids = sorted({key[0] for key in groups})
        messages = {}
        for part in _chunks(message_ids):
            for row in conn.execute(select(OutboundMessage).where(OutboundMessage.id.in_(part))):
                messages[row.id] = row
        wanted = {i for group in groups.values() for i in group}
        recipients: dict[int, object] = {}
        for part in _chunks(sorted(wanted)):
            for row in conn.execute(select(OutboundRecipient).where(OutboundRecipient.id.in_(part))):
                recipients[row.id] = row
        return [
            Claim(_message(messages[mid], [recipients[i] for i in ids]), domain)
            for (mid, domain), ids in groups.items()
        ]

    def record(self, outcomes: Sequence[Outcome], *, now: _dt.datetime | None = None) -> None:
        """Store attempt results (and release the lease) in one commit. Set-based: the worker
        hands in the outcomes of many transactions at once, and a delivered recipient (the
        usual outcome) costs a share of three statements, not three of its own."""
        self.record_soon(outcomes, now=now).result()

    def record_soon(self, outcomes: Sequence[Outcome], *, now: _dt.datetime | None = None) -> concurrent.futures.Future:
        """``record`` without waiting."""
        outcomes = list(outcomes)
        when = _db(now)

        def job(conn, _changes) -> None:
            owner: dict[int, int] = {}  # recipient → message, for those still there
            for part in _chunks([o.recipient_id for o in outcomes]):
                rows = conn.execute(select(OutboundRecipient.id, OutboundRecipient.message_id).where(OutboundRecipient.id.in_(part)))
                owner.update((rid, mid) for rid, mid in rows)
            # (a recipient missing here was deleted by an operator meanwhile)
            for part in _chunks([o.recipient_id for o in outcomes if o.state is None and o.recipient_id in owner]):
                conn.execute(delete(OutboundRecipient).where(OutboundRecipient.id.in_(part)))
            for o in outcomes:
                if o.state is None or o.recipient_id not in owner:
                    continue
                values = {
                    "state": o.state, "attempts": OutboundRecipient.attempts + 1, "last_attempt_at": when,
                    "last_code": o.code, "last_reply": _text(o.reply), "remote": _text(o.remote)[:255] or None,
                    "locked_until": None, "locked_by": None,
                }  # fmt: skip
                if o.next_attempt_at is not None:
                    values["next_attempt_at"] = _db(o.next_attempt_at)
                if o.warned is not None:
                    values["warned"] = o.warned
                conn.execute(update(OutboundRecipient).where(OutboundRecipient.id == o.recipient_id).values(**values))
            _drop_finished(conn, set(owner.values()))

        return self._writer.submit(job)

    def owed_dsns(self, limit: int = 100) -> list[QueuedMessage]:
        """Messages with recipients in state BOUNCE (their DSN is still to be delivered)."""
        with self.reading() as conn:
            rows = conn.execute(
                select(OutboundRecipient).where(OutboundRecipient.state == BOUNCE).order_by(OutboundRecipient.id).limit(limit)
            ).all()
            by_message: dict[int, list] = {}
            for row in rows:
                by_message.setdefault(row.message_id, []).append(row)
            messages = conn.execute(select(OutboundMessage).where(OutboundMessage.id.in_(list(by_message)))).all()
        return [_message(m, by_message[m.id]) for m in messages]

    # -- TLS-RPT (RFC 8460) -------------------------------------------------------------------------
    def add_tls_counts(self, counts: Sequence[TlsCount]) -> None:
        """Add to the day's totals (one row per day, domain, policy type, MX host and result)."""
        merged: dict[tuple, int] = {}
        for c in counts:
            key = (c.day, c.domain[:255], c.policy_type, c.mx_host[:255], c.result)
            merged[key] = merged.get(key, 0) + c.count
        if not merged:
            return

        def job(conn, _changes) -> None:
            t = TlsReportCount
            for (day, domain, kind, mx, result), n in merged.items():
                where = (t.day == day, t.domain == domain, t.policy_type == kind, t.mx_host == mx, t.result == result)
                if conn.execute(update(t).where(*where).values(count=t.count + n)).rowcount == 0:
                    conn.execute(insert(t).values(day=day, domain=domain, policy_type=kind, mx_host=mx, result=result, count=n))

        self.run_write(job)

    def tls_counts(self, before_day: str) -> list[TlsCount]:
        t = TlsReportCount
        with self.reading() as conn:
            rows = conn.execute(select(t).where(t.day < before_day).order_by(t.day, t.domain, t.policy_type, t.mx_host)).all()
        return [TlsCount(r.day, r.domain, r.policy_type, r.mx_host, r.result, r.count) for r in rows]

    def drop_tls_counts(self, days: Sequence[str]) -> None:
        def job(conn, _changes) -> None:
            conn.execute(delete(TlsReportCount).where(TlsReportCount.day.in_(list(days))))

        self.run_write(job)

    def dsn_done(self, recipient_ids: Sequence[int]) -> None:
        """The DSN for these BOUNCE recipients is delivered: FAILED, and drop finished messages."""

        def job(conn, _changes) -> None:
            touched = set()
            for part in _chunks(list(recipient_ids)):
                touched.update(conn.scalars(select(OutboundRecipient.message_id).where(OutboundRecipient.id.in_(part))))
                conn.execute(update(OutboundRecipient).where(OutboundRecipient.id.in_(part)).values(state=FAILED))
            _drop_finished(conn, touched)

        self.run_write(job)

    def release(self, owner: str | None = None) -> int:
        """Clear leases (all, or ``owner``'s): at start-up of the only process on SQLite."""

        def job(conn, _changes) -> int:
            stmt = update(OutboundRecipient).where(OutboundRecipient.locked_until.is_not(None))
            if owner is not None:
                stmt = stmt.where(OutboundRecipient.locked_by == owner)
            return conn.execute(stmt.values(locked_until=None, locked_by=None)).rowcount

        return self.run_write(job)

    def next_due(self, now: _dt.datetime | None = None) -> _dt.datetime | None:
        """When the earliest claimable queued recipient is due, or None (claimed ones excluded:
        their lease ending is what makes them due again)."""
        when = _db(now)
        with self.reading() as conn:
            due = conn.scalar(
                select(func.min(OutboundRecipient.next_attempt_at)).where(
                    OutboundRecipient.state == QUEUED,
                    (OutboundRecipient.locked_until.is_(None)) | (OutboundRecipient.locked_until < when),
                )
            )
        return _aware(due)

    # -- operators (mailserver queue …) -----------------------------------------------------------
    def list(self) -> list[QueuedMessage]:
        with self.reading() as conn:
            messages = conn.execute(select(OutboundMessage).order_by(OutboundMessage.id)).all()
            recipients: dict[int, list] = {}
            for row in conn.execute(select(OutboundRecipient).order_by(OutboundRecipient.id)):
                recipients.setdefault(row.message_id, []).append(row)
        return [_message(m, recipients.get(m.id, [])) for m in messages]

    def show(self, message_id: int) -> QueuedMessage:
        with self.reading() as conn:
            row = conn.execute(select(OutboundMessage).where(OutboundMessage.id == message_id)).first()
            if row is None:
                raise NotFound(f"queued message {message_id}")
            recipients = conn.execute(
                select(OutboundRecipient).where(OutboundRecipient.message_id == message_id).order_by(OutboundRecipient.id)
            ).all()
        return _message(row, recipients)

    def retry(self, message_id: int | None = None, *, now: _dt.datetime | None = None) -> int:
        """Make queued recipients (of one message, or all) due now; returns how many."""
        when = _db(now)

        def job(conn, _changes) -> int:
            stmt = update(OutboundRecipient).where(OutboundRecipient.state == QUEUED)
            if message_id is not None:
                if conn.scalar(select(OutboundMessage.id).where(OutboundMessage.id == message_id)) is None:
                    raise NotFound(f"queued message {message_id}")
                stmt = stmt.where(OutboundRecipient.message_id == message_id)
            return conn.execute(stmt.values(next_attempt_at=when)).rowcount

        return self.run_write(job)

    def delete(self, message_id: int) -> None:
        """Remove a message from the queue without a DSN (operator's decision)."""

        def job(conn, _changes) -> None:
            conn.execute(delete(OutboundRecipient).where(OutboundRecipient.message_id == message_id))
            if conn.execute(delete(OutboundMessage).where(OutboundMessage.id == message_id)).rowcount == 0:
                raise NotFound(f"queued message {message_id}")

        self.run_write(job)


def _drop_finished(conn, message_ids: Iterable[int]) -> None:
    """Remove the messages among ``message_ids`` with no recipient queued or owed a DSN."""
    candidates = sorted(set(message_ids))
    open_ = set()
    for part in _chunks(candidates):
        open_.update(conn.scalars(
            select(OutboundRecipient.message_id).distinct()
            .where(OutboundRecipient.message_id.in_(part), OutboundRecipient.state.in_((QUEUED, BOUNCE)))
        ))  # fmt: skip
    finished = [m for m in candidates if m not in open_]
    for part in _chunks(finished):
        conn.execute(delete(OutboundRecipient).where(OutboundRecipient.message_id.in_(part)))
        conn.execute(delete(OutboundMessage).where(OutboundMessage.id.in_(part)))


def _chunks(items: Sequence[int], size: int = 500):
    for start in range(0, len(items), size):
        yield items[start : start + size]

