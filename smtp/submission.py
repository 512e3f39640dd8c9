"""Submission (587 STARTTLS, 465 implicit TLS): AUTH PLAIN/LOGIN verified off the loop.

aiosmtpd's authenticator callback is synchronous; argon2 costs ~25 ms, so these handler-side
``auth_*`` methods (which aiosmtpd prefers over its built-ins) await ``Authenticator.authenticate``
in a worker thread. A failure answers ``535 5.7.8`` no sooner than ``AUTH_FAILURE_DELAY`` after
the credentials arrived, whether the account exists, the password was wrong or the authorization
identity was refused: the timing says nothing about which addresses exist, and guessing is slow.
AUTH is offered only under TLS, except from loopback when ``tls.allow_plaintext_auth_on_loopback``
(smtp/protocol.py).

SASL PLAIN's authorization identity (RFC 4616): after the authentication identity's
password is checked, ``org.resolve_login`` lets a head or delegate act as a unit mailbox (and
records it); anything else is ``535 5.7.8`` like a wrong password.

After AUTH: the envelope sender and every From: address must be the user's or one it may send as
(checks ``sender_authorised``, ``from_header``: 553 5.7.1); the header gets its hygiene (Bcc
removed, Date and Message-ID added when missing, the rest byte for byte: smtp/outbound/hygiene.py);
local recipients are delivered at once and remote ones go to the outbound queue.
"""

from __future__ import annotations

import asyncio
import binascii
import datetime as _dt
import logging
from base64 import b64decode
from concurrent.futures import Executor
from typing import Any, BinaryIO

from aiosmtpd.smtp import MISSING, AuthResult

from config.settings import Settings
from mailserver.policy.passwords import must_change_first
from smtp import pipeline, replies
from smtp.handler import InboundHandler
from smtp.outbound.hygiene import clean_header, read_header
from smtp.pipeline import Login, Peer
from smtp.transaction import Transaction
from storage.api import Store
from storage.errors import NoPerm, StoreError

log = logging.getLogger("smtp.submission")

MAIL_CHECKS = ("declared_size", "login_current", "sender_authorised")
#: ``virus`` (clamd, whenever configured: a virus is always refused) and ``spam`` (spamd, when
#: ``filters.spamd.submission``) before the classified-document guard (R-SEC-3).
DATA_CHECKS = ("message_size", "from_header", "attachment_quota", "virus", "spam", "classified")
#: Seconds from the credentials to a 535 (argon2 takes ~25 ms either way; this evens out the rest).
AUTH_FAILURE_DELAY = 1.0


class SubmissionHandler(InboundHandler):
    def __init__(self, settings: Settings, store: Store, auth: Any, *, executor: Executor | None = None,
                 logins: Any = None, rates: Any = None, **kwargs: Any) -> None:
        super().__init__(
            settings, store, mail_checks=pipeline.build("MAIL", MAIL_CHECKS),
            data_checks=pipeline.build("DATA", DATA_CHECKS), executor=executor, **kwargs,
        )  # fmt: skip
        self.auth = auth
        self.logins = logins  # mailserver.accounts.guard.LoginGuard; None: no guard
        self.rates = rates  # mailserver.accounts.rates.SendingRates; None: no hourly limits
        self.failure_delay = AUTH_FAILURE_DELAY

    async def _verify(self, server: Any, mechanism: str, login: bytes, password: bytes, authzid: bytes = b"") -> AuthResult:
        loop = asyncio.get_running_loop()
        started = loop.time()
        username = login.decode("utf-8", "replace")
        target = authzid.decode("utf-8", "replace")

        async def check() -> tuple[Any, str]:
            account = await loop.run_in_executor(None, self.auth.authenticate, username, password.decode("utf-8", "replace"))
            if account is None:
                return None, "credentials"
            acting = account
            if target:
                if self.org is None:
                    acting = account if target.lower() == account.address else None
                else:
                    try:
                        acting, _rights = await loop.run_in_executor(
                            None, lambda: self.org.resolve_login(account, target, via="submission")
                        )
                    except NoPerm:
                        acting = None
            return ((account, acting), "") if acting is not None else (None, "authorization")

        peer = server.session.peer
        if self.logins is None:
            found, _reason = await check()
        else:
            host = str(peer[0]) if peer else ""
            attempt = await self.logins.attempt(
                "submission", host, username, check,
                thread=lambda fn, *args: loop.run_in_executor(None, fn, *args), sleep=asyncio.sleep)
            if attempt.refused:
                await server.push(replies.S454_BLOCKED)
                return AuthResult(success=False, handled=True)
            found = attempt.account
        if found is None:
            if self.logins is None:
                log.info("AUTH %s failed for %r (authzid %r) from %s", mechanism, username, target, peer)
            await asyncio.sleep(max(0.0, started + self.failure_delay - loop.time()))
            return AuthResult(success=False, handled=False, message=replies.S535_AUTH_FAILED)
        account, acting = found
        if must_change_first(self.settings.passwords, account, _dt.datetime.now(_dt.UTC)):  # R-PASS-1
            log.info("AUTH %s refused for %s from %s: initial password not changed", mechanism, account.address, peer)
            url = self.settings.password_url() or "the portal"
            return AuthResult(success=False, handled=False,
                              message=f"535 5.7.8 Change your initial password first (doi mat khau ban dau): {url}")
        log.info("AUTH %s ok for %s as %s from %s", mechanism, account.address, acting.address, peer)
        # aiosmtpd 1.4 copies a successful AuthResult into the deprecated ``Session.login_data``,
        # logging a deprecation warning at every login. The session's supported attributes are set
        # here and the reply sent, and aiosmtpd is told the method handled the command itself.
        server.session.authenticated = True
        server.session.auth_data = Login(acting, account)
        await server.push(replies.S235_AUTH_OK)
        return AuthResult(success=False, handled=True)

    # -- hourly sending limits (mailserver/accounts/rates.py) -------------------------------------
    async def mail(self, peer: Peer, tx: Transaction, path: Any) -> str:
        if self.rates is not None and peer.authenticated and await self._call(self.rates.over, _sender(peer), peer.ip, 0):
            return replies.S451_RATE
        return await super().mail(peer, tx, path)

    async def rcpt(self, peer: Peer, tx: Transaction, path: Any) -> str:
        if (self.rates is not None and peer.authenticated
                and await self._call(self.rates.over, _sender(peer), peer.ip, len(tx.rcpt_tos) + 1)):
            return replies.S451_RATE
        return await super().rcpt(peer, tx, path)

    async def data(self, peer: Peer, tx: Transaction, result: Any, peer_name: str | None, esmtp: bool) -> str:
        reply = await super().data(peer, tx, result, peer_name, esmtp)
        if peer.authenticated and reply.startswith("250") and peer.account_id is not None:
            self.store.usage.count(peer.account_id, "sent")  # R-OPS-2: in memory, written in a batch
        if self.rates is not None and peer.authenticated and reply.startswith("250"):
            try:
                await self._call(self.rates.record, _sender(peer), len(tx.rcpt_tos))
            except StoreError as e:  # the message is accepted; only its count is lost
                log.error("id=%s sending rate not counted: %s %s", tx.id, e.kind, e.detail)
        return reply

    async def auth_PLAIN(self, server: Any, args: list[str]) -> AuthResult:
        """RFC 4616, with or without an initial response (SASL-IR)."""
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            blob = await _decode(server, args[1])
            if blob is None:
                return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await server.push(replies.S501_AUTH_BASE64)
            return AuthResult(success=False, handled=True)
        return await self._verify(server, "PLAIN", parts[1], parts[2], authzid=parts[0])

    async def auth_LOGIN(self, server: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await server.challenge_auth("Username:")
        else:
            login = await _decode(server, args[1])
        if login is MISSING or login is None:
            return AuthResult(success=False, handled=True)
        password = await server.challenge_auth("Password:")
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        return await self._verify(server, "LOGIN", login, password)

    def clean_header(self, spool: BinaryIO) -> bytes:
        """Header hygiene: the cleaned header section when it changed, the spool left
        at the body; else nothing, the spool at 0 (stored as sent)."""
        head, body_at = read_header(spool)
        cleaned = clean_header(head, hostname=self.settings.hostname)
        if cleaned is head:
            spool.seek(0)
            return b""
        spool.seek(body_at)
        return cleaned


def _sender(peer: Peer) -> int:
    """Whose rate a message counts against: the account that logged in (a delegate sending as a
    unit mailbox spends its own)."""
    return peer.actor_id if peer.actor_id is not None else peer.account_id


async def _decode(server: Any, text: str) -> bytes | None:
    try:
        return b64decode(text.encode(), validate=True)
    except (binascii.Error, ValueError):
        await server.push(replies.S501_AUTH_BASE64)
        return None
