"""Submission (587 STARTTLS, 465 implicit TLS): AUTH PLAIN/LOGIN verified off the loop.

aiosmtpd's authenticator callback is synchronous; argon2 costs ~25 ms, so these handler-side
``auth_*`` methods (which aiosmtpd prefers over its built-ins) await ``Authenticator.authenticate``
in a worker thread. The Authenticator costs the same whether or not the account exists, so a
failure says nothing about which addresses exist (535 5.7.8 either way). AUTH is offered only
under TLS, except from loopback when ``tls.allow_plaintext_auth_on_loopback`` (smtp/protocol.py).
"""

from __future__ import annotations

import asyncio
import binascii
import logging
from base64 import b64decode
from concurrent.futures import Executor
from typing import Any

from aiosmtpd.smtp import MISSING, AuthResult

from config.settings import Settings
from smtp import pipeline, replies
from smtp.handler import InboundHandler
from storage.api import Store

log = logging.getLogger("smtp.submission")

MAIL_CHECKS = ("declared_size", "sender_authorised")


class SubmissionHandler(InboundHandler):
    def __init__(
        self, settings: Settings, store: Store, auth: Any, *, executor: Executor | None = None, groups: Any = None
    ) -> None:
        super().__init__(
            settings, store, mail_checks=pipeline.build("MAIL", MAIL_CHECKS), executor=executor, groups=groups
        )
        self.auth = auth

    async def _verify(self, server: Any, mechanism: str, login: bytes, password: bytes) -> AuthResult:
        username = login.decode("utf-8", "replace")
        loop = asyncio.get_running_loop()
        account = await loop.run_in_executor(None, self.auth.authenticate, username, password.decode("utf-8", "replace"))
        if account is None:
            log.info("AUTH %s failed for %r from %s", mechanism, username, server.session.peer)
            return AuthResult(success=False, handled=False, message=replies.S535_AUTH_FAILED)
        log.info("AUTH %s ok for %s from %s", mechanism, account.address, server.session.peer)
        return AuthResult(success=True, auth_data=account, message=replies.S235_AUTH_OK)

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
        return await self._verify(server, "PLAIN", parts[1], parts[2])

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


async def _decode(server: Any, text: str) -> bytes | None:
    try:
        return b64decode(text.encode(), validate=True)
    except (binascii.Error, ValueError):
        await server.push(replies.S501_AUTH_BASE64)
        return None
