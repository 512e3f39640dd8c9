"""``start_managesieve``: the ManageSieve listener (RFC 5804, ``listeners.managesieve``, standard
port 4190), asyncio on the shared loop. Connections count against ``guard.connections_per_address``;
``sockets``: listening sockets already bound by the parent of ``serve --workers``."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from config.settings import Settings
from managesieve.session import PROTOCOL, Authenticator, Session
from storage.api import Store

log = logging.getLogger("managesieve")


async def start_managesieve(settings: Settings, store: Store, auth: Authenticator, ssl_context: ssl.SSLContext | None,
                            *, logins: Any = None, limits: Any = None, sockets: dict | None = None) -> list[asyncio.Server]:  # fmt: skip
    listener = settings.listeners.managesieve
    if listener is None:
        return []

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if peer else ""
        if limits is not None and not limits.acquire(PROTOCOL, host):
            writer.write(b'BYE "too many connections from your address"\r\n')
            writer.close()
            return
        try:
            await Session(reader, writer, settings=settings, store=store, auth=auth, ssl_context=ssl_context,
                          logins=logins).run()  # fmt: skip
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug: the client gets a clean end, the log the traceback
            log.exception("managesieve session from %s failed", host)
            try:
                writer.write(b'BYE "internal error"\r\n')
            except Exception:  # noqa: BLE001
                pass
        finally:
            if limits is not None:
                limits.release(PROTOCOL, host)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, ssl.SSLError):
                pass

    sock = (sockets or {}).get((listener.address, listener.port))  # bound by the parent of workers
    if sock is not None:
        server = await asyncio.start_server(connected, sock=sock, limit=64 * 1024)
    else:
        server = await asyncio.start_server(connected, listener.address, listener.port, limit=64 * 1024)
    log.info("managesieve listening on %s:%d", listener.address, listener.port)
    return [server]
