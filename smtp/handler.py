"""Thin per-verb handlers for inbound mail: build a context, run the pipeline, map to a reply.

Called by ``smtp.protocol.MailSMTP`` once a command's syntax is valid. No SQL here (front ends
speak only to the storage API): the pipeline checks and ``smtp.delivery`` talk to the storage API.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import time
from concurrent.futures import Executor
from typing import Any, BinaryIO, Sequence

from config.settings import Settings
from mailserver.policy import metrics
from smtp import delivery, pipeline, replies
from smtp.address import PathArg
from smtp.bounce import Outbound
from smtp.data import DataResult, DataState
from smtp.pipeline import Check, DataContext, Groups, MailContext, Org, Peer, RcptContext
from smtp.quota import QuotaPolicy
from smtp.received import Trace, protocol_name, trace_headers
from smtp.transaction import Transaction
from storage.api import Store
from storage.errors import StoreError

log = logging.getLogger("smtp.handler")


class InboundHandler:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        mail_checks: Sequence[tuple[str, Check]] | None = None,
        rcpt_checks: Sequence[tuple[str, Check]] | None = None,
        data_checks: Sequence[tuple[str, Check]] | None = None,
        executor: Executor | None = None,
        groups: Groups | None = None,
        quota: QuotaPolicy | None = None,
        org: Org | None = None,
        outbound: Outbound | None = None,
        resolver: Any = None,
        max_size: int | None = None,
        filters: Any = None,
        classified: Any = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.groups = groups
        self.quota = quota
        self.org = org
        self.outbound = outbound
        self.resolver = resolver  # smtp.outbound.dns.Resolver: SPF/DKIM of inbound mail
        self.filters = filters  # smtp.filters.Filters: content filters and DMARC (MX)
        self.classified = classified  # smtp.classified.Guard: stamps of state secrets (submission, R-SEC-3)
        self.max_size = max_size if max_size is not None else settings.limits.max_message_size
        # Store calls of SMTP sessions. A thread waiting on a group commit costs nothing, and the
        # loop's default executor (CPUs + 4 threads) would cap a group commit at that many messages.
        self.executor = executor
        self.configured_domains = frozenset(d.lower().rstrip(".") for d in settings.domains)
        # RCPT TO:<Postmaster> (no domain) goes to postmaster@ the first configured domain.
        self.postmaster_domain = settings.domains[0] if settings.domains else None
        self.mail_checks = pipeline.build("MAIL") if mail_checks is None else mail_checks
        self.rcpt_checks = pipeline.build("RCPT") if rcpt_checks is None else rcpt_checks
        self.data_checks = pipeline.build("DATA") if data_checks is None else data_checks

    async def mail(self, peer: Peer, tx: Transaction, path: PathArg) -> str:
        ctx = MailContext(
            self.store, self.settings.limits, peer, self.executor, sender=path.address, declared_size=tx.declared_size,
            max_size=self.max_size, org=self.org,
        )  # fmt: skip
        try:
            name, verdict = await pipeline.run(self.mail_checks, ctx)
        except StoreError as e:
            log.warning("id=%s MAIL <%s>: store error %s %s", tx.id, path.address, e.kind, e.detail)
            return replies.for_error(e.kind, "MAIL")
        if verdict.reply is not None:
            log.info("id=%s MAIL <%s> refused by %s: %s", tx.id, path.address, name, verdict.reason)
            metrics.REFUSED.labels("MAIL", name).inc()
            return verdict.reply
        tx.mail_from = path.address
        if ctx.send_as is not None:
            tx.send_as.add(ctx.send_as)
        return replies.S250_SENDER_OK

    async def rcpt(self, peer: Peer, tx: Transaction, path: PathArg) -> str:
        ctx = RcptContext(
            self.store, self.settings.limits, peer, self.executor,
            sender=tx.mail_from or "", address=path.address, domain=path.domain,
            accepted=len(tx.rcpt_tos), declared_size=tx.declared_size, configured_domains=self.configured_domains,
            groups=self.groups, quota=self.quota, utf8=tx.smtp_utf8, roles=self.settings.role_addresses,
        )  # fmt: skip
        try:
            name, verdict = await pipeline.run(self.rcpt_checks, ctx)
        except StoreError as e:  # e.g. the database is unreachable: the sender retries this one
            log.warning("id=%s RCPT <%s>: store error %s %s", tx.id, path.address, e.kind, e.detail)
            return replies.for_error(e.kind, "RCPT")
        if verdict.reply is not None:
            log.info("id=%s RCPT <%s> refused by %s: %s", tx.id, path.address, name, verdict.reason)
            metrics.REFUSED.labels("RCPT", name).inc()
            return verdict.reply
        tx.rcpt_tos.append(path.address)
        if ctx.local is False:
            tx.remote.append(path.address)  # passed the relay check: an authenticated user, a queue
        else:
            tx.accounts.extend(ctx.deliver_to)  # targets_for() gives an account in two groups one copy
        return replies.S250_RECIPIENT_OK

    async def data(self, peer: Peer, tx: Transaction, result: DataResult, peer_name: str | None, esmtp: bool) -> str:
        """The checks and the delivery of a received message; timed and counted for /metrics."""
        started = time.perf_counter()
        reply = await self._data(peer, tx, result, peer_name, esmtp)
        metrics.SMTP_DATA_SECONDS.observe(time.perf_counter() - started)
        if reply.startswith("250"):
            metrics.RECEIVED.labels("submission" if peer.authenticated else "mx").inc()
        return reply

    async def _data(self, peer: Peer, tx: Transaction, result: DataResult, peer_name: str | None, esmtp: bool) -> str:
        sender_account = None
        if peer.authenticated and peer.account_id is not None and self.quota is not None:
            sender_account = await self._call(self.store.accounts.get_account_by_id, peer.account_id)
        ctx = DataContext(
            self.store, self.settings.limits, peer, self.executor,
            sender=tx.mail_from or "", recipients=tuple(tx.rcpt_tos), accounts=tuple(tx.accounts),
            remote=tuple(tx.remote), size=result.size, data_state=result.state, spool=result.spool, head=result.head,
            quota=self.quota, utf8=tx.smtp_utf8, sender_account=sender_account, org=self.org,
            helo=peer.helo, authserv_id=self.settings.hostname, resolver=self.resolver, filters=self.filters,
            classified=self.classified,
        )  # fmt: skip
        ctx.extra["tx_id"] = tx.id
        try:
            name, verdict = await pipeline.run(self.data_checks, ctx)
        except StoreError as e:
            log.warning("id=%s DATA: store error %s %s", tx.id, e.kind, e.detail)
            return replies.for_error(e.kind, "DATA")
        if verdict.reply is not None:
            log.info("id=%s DATA refused by %s: %s", tx.id, name, verdict.reason)
            metrics.REFUSED.labels("DATA", name).inc()
            return verdict.reply
        assert result.state is DataState.OK and result.spool is not None
        if not tx.accounts and not tx.remote:
            log.error("id=%s no recipient to deliver to", tx.id)
            return replies.S451_TEMP
        trace = Trace(
            helo=peer.helo, peer_ip=peer.ip, peer_name=peer_name, hostname=self.settings.hostname,
            protocol=protocol_name(esmtp=esmtp, tls=peer.tls, authenticated=peer.authenticated, utf8=tx.smtp_utf8),
            id=tx.id, sender=tx.mail_from or "", recipients=tuple(tx.rcpt_tos),
            when=_dt.datetime.now(_dt.timezone.utc),
        )  # fmt: skip
        head = trace_headers(trace)
        # Return-Path first, then what checks add (Authentication-Results), then Received.
        rp_end = head.index(b"\r\n") + 2
        prefix = head[:rp_end] + verdict.headers + head[rp_end:]
        if "head" in ctx.extra:  # a milter edited the header section: stored edited, body from the spool
            prefix += ctx.extra["head"]
            result.spool.seek(ctx.extra["body_at"])
        elif type(self).clean_header is InboundHandler.clean_header:
            result.spool.seek(0)  # MX: stored as received, no thread hand-off
        else:
            prefix += await self._call(self.clean_header, result.spool)
        if "hold" in ctx.extra:  # the classified-document guard keeps it for an operator (R-SEC-3)
            return await self._hold(peer, tx, prefix, result.spool, ctx.extra["hold"])
        message = delivery.Message(result.spool, prefix, result.size, tx.accounts, tx.remote, ctx.extra.get("refused", {}),
                                   ctx.parsed, folder=ctx.extra.get("folder", "INBOX"), options=tx.options(),
                                   rcpt_of=tx.account_rcpt)  # fmt: skip
        if message.folder != "INBOX":
            log.info("id=%s filed into %s: %s", tx.id, message.folder, "; ".join(ctx.extra.get("junk_reasons", ())))
        reply = await delivery.deliver(
            self.store, message, tx_id=tx.id, sender=tx.mail_from or "", hostname=self.settings.hostname,
            executor=self.executor, limit_for=self.quota.delivery_limit if self.quota else None,
            limit_blocks=self.quota.limits_need_store() if self.quota else False, outbound=self.outbound,
        )  # fmt: skip
        send_as = tx.send_as | ctx.extra.get("send_as", set())
        if reply.startswith("250") and send_as and self.org is not None:
            await self._record_send_as(peer, tx, send_as)
        return reply

    async def _hold(self, peer: Peer, tx: Transaction, prefix: bytes, spool: BinaryIO, outcome: Any) -> str:
        """Store the message as it would have been delivered in the review queue, audit it and
        tell the sender's unit; the client hears 250 with the queue's number."""
        from smtp.classified import held_reply

        def keep() -> int:
            blob = self.store.messages.put_blob(spool, prefix=prefix)
            return self.store.held.hold(
                blob, tx.mail_from or "", peer.account_id, [a.id for a in tx.accounts], list(tx.remote),
                reason=outcome.verdict, part=outcome.part, detail=f"{outcome.marking} {outcome.detail}".strip(),
                tx_id=tx.id,
            )  # fmt: skip

        try:
            held_id = await self._call(keep)
        except StoreError as e:
            log.warning("id=%s hold: store error %s %s", tx.id, e.kind, e.detail)
            return replies.for_error(e.kind, "DATA")
        log.warning("id=%s held for review as %d (%s in %s)", tx.id, held_id, outcome.verdict, outcome.part or "-")
        reports = getattr(self.classified, "reports", None)
        if reports is not None:
            try:
                await self._call(lambda: reports.report(
                    account_id=peer.account_id, actor_id=peer.actor_id, sender=tx.mail_from or "", outcome=outcome,
                    action="hold", tx_id=tx.id, held_id=held_id))  # fmt: skip
            except StoreError as e:  # held all the same; the gap is logged loudly
                log.error("id=%s classified guard: audit or notice failed: %s %s", tx.id, e.kind, e.detail)
        return held_reply(held_id, tx.smtp_utf8)

    def clean_header(self, spool: BinaryIO) -> bytes:
        """What replaces the start of the spool in the stored message (submission: header
        hygiene); leaves the spool where the stored bytes continue. MX: nothing, from 0."""
        spool.seek(0)
        return b""

    async def _record_send_as(self, peer: Peer, tx: Transaction, mailboxes: set[int]) -> None:
        actor = peer.actor_id if peer.actor_id is not None else peer.account_id
        for mailbox in sorted(mailboxes):
            try:
                await self._call(self.org.record_access, actor, mailbox, "send-as", f"id={tx.id}")
            except StoreError as e:  # the message is accepted; the audit gap is logged loudly
                log.error("id=%s send-as audit for %s failed: %s %s", tx.id, mailbox, e.kind, e.detail)

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd hook: an unexpected error in a command. The client gets a generic temporary
        failure (it retries), the log gets the traceback; never the exception text."""
        log.error("unexpected error in SMTP session", exc_info=error)
        return replies.S451_TEMP
