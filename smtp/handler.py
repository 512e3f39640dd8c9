"""Thin per-verb handlers for inbound mail: build a context, run the pipeline, map to a reply.

Called by ``smtp.protocol.MailSMTP`` once a command's syntax is valid. No SQL here (STYLE.md
lesson 5): the pipeline checks and ``smtp.delivery`` talk to the storage API.
"""

from __future__ import annotations

import datetime as _dt
import logging
from concurrent.futures import Executor
from typing import Sequence

from config.settings import Settings
from smtp import delivery, pipeline, replies
from smtp.address import PathArg
from smtp.data import DataResult, DataState
from smtp.pipeline import Check, DataContext, Groups, MailContext, Peer, RcptContext
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
    ) -> None:
        self.settings = settings
        self.store = store
        self.groups = groups
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
            self.store, self.settings.limits, peer, self.executor, sender=path.address, declared_size=tx.declared_size
        )
        try:
            name, verdict = await pipeline.run(self.mail_checks, ctx)
        except StoreError as e:
            log.warning("id=%s MAIL <%s>: store error %s %s", tx.id, path.address, e.kind, e.detail)
            return replies.for_error(e.kind, "MAIL")
        if verdict.reply is not None:
            log.info("id=%s MAIL <%s> refused by %s: %s", tx.id, path.address, name, verdict.reason)
            return verdict.reply
        tx.mail_from = path.address
        return replies.S250_SENDER_OK

    async def rcpt(self, peer: Peer, tx: Transaction, path: PathArg) -> str:
        ctx = RcptContext(
            self.store, self.settings.limits, peer, self.executor,
            sender=tx.mail_from or "", address=path.address, domain=path.domain,
            accepted=len(tx.rcpt_tos), declared_size=tx.declared_size, configured_domains=self.configured_domains,
            groups=self.groups,
        )  # fmt: skip
        try:
            name, verdict = await pipeline.run(self.rcpt_checks, ctx)
        except StoreError as e:  # e.g. the database is unreachable: the sender retries this one
            log.warning("id=%s RCPT <%s>: store error %s %s", tx.id, path.address, e.kind, e.detail)
            return replies.for_error(e.kind, "RCPT")
        if verdict.reply is not None:
            log.info("id=%s RCPT <%s> refused by %s: %s", tx.id, path.address, name, verdict.reason)
            return verdict.reply
        tx.rcpt_tos.append(path.address)
        tx.accounts.extend(ctx.deliver_to)  # targets_for() gives an account in two groups one copy
        return replies.S250_RECIPIENT_OK

    async def data(self, peer: Peer, tx: Transaction, result: DataResult, peer_name: str | None, esmtp: bool) -> str:
        ctx = DataContext(
            self.store, self.settings.limits, peer, self.executor,
            sender=tx.mail_from or "", recipients=tuple(tx.rcpt_tos), accounts=tuple(tx.accounts),
            size=result.size, data_state=result.state, spool=result.spool,
        )  # fmt: skip
        name, verdict = await pipeline.run(self.data_checks, ctx)
        if verdict.reply is not None:
            log.info("id=%s DATA refused by %s: %s", tx.id, name, verdict.reason)
            return verdict.reply
        assert result.state is DataState.OK and result.spool is not None
        if not tx.accounts:  # only remote recipients: the outbound queue (issue 7) takes these
            log.error("id=%s no local recipient and no outbound queue", tx.id)
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
        return await delivery.deliver(
            self.store, result.spool, prefix, tx.accounts, tx_id=tx.id, sender=tx.mail_from or "", executor=self.executor
        )

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd hook: an unexpected error in a command. The client gets a generic temporary
        failure (it retries), the log gets the traceback; never the exception text (issue 2)."""
        log.error("unexpected error in SMTP session", exc_info=error)
        return replies.S451_TEMP
