"""Entry point called by ``mailserver/app.py``: start the SMTP listeners on the running loop."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from config.settings import Settings
from smtp.data import spool_factory
from smtp.handler import InboundHandler
from smtp.protocol import MailSMTP
from storage.api import Store

log = logging.getLogger("smtp.service")


def protocol_factory(settings: Settings, store: Store, ssl_context: ssl.SSLContext | None, **kwargs: Any):
    """A factory of MX sessions sharing one handler (the handler holds no per-session state)."""
    handler = InboundHandler(settings, store)
    spool = spool_factory(settings.data_dir / "spool", settings.limits.smtp_spool_threshold)
    loop = asyncio.get_running_loop()

    def make() -> MailSMTP:
        return MailSMTP(
            handler,
            spool_factory=spool,
            max_message_size=settings.limits.max_message_size,
            hostname=settings.hostname,  # never the blocking socket.getfqdn()
            ident="ESMTP",
            tls_context=ssl_context,
            timeout=settings.limits.smtp_timeout,
            loop=loop,
            **kwargs,
        )

    return make


async def start_smtp(settings: Settings, store: Store, auth: Any, ssl_context: ssl.SSLContext | None) -> list[asyncio.Server]:
    """Start the MX listener (``listeners.smtp``). ``auth`` is for submission (issue 7); the MX
    port offers no AUTH and relays nothing (R-SEC-1)."""
    loop = asyncio.get_running_loop()
    servers: list[asyncio.Server] = []
    listener = settings.listeners.smtp
    if listener is None:
        return servers
    spool_dir = settings.data_dir / "spool"
    await loop.run_in_executor(None, lambda: spool_dir.mkdir(parents=True, exist_ok=True))
    server = await loop.create_server(
        protocol_factory(settings, store, ssl_context), listener.address, listener.port, reuse_address=True
    )
    servers.append(server)
    for sock in server.sockets:
        log.info("smtp listening on %s", sock.getsockname()[:2])
    return servers
