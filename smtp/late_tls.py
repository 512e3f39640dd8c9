"""TLS started by the server on a connection it has already read from: port 465 behind a
load balancer (HAProxy ``send-proxy``) begins with a PROXY header in clear, then TLS.

``loop.start_tls`` cannot take the bytes that came in the same read as the header (the start of
the client's TLS ClientHello, which HAProxy forwards at once), so the TLS layer is asyncio's own
``SSLProtocol`` put in front of our protocol by hand and fed those bytes first. asyncio calls
our ``connection_made`` again with the TLS transport once the handshake is done; a failed
handshake closes the connection without a session (nothing was counted or started).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from asyncio import sslproto

log = logging.getLogger("smtp.proxy")


def start_tls(loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, protocol: asyncio.Protocol,
              context: ssl.SSLContext, rest: bytes, timeout: float) -> None:
    waiter = loop.create_future()
    waiter.add_done_callback(_handshake_done)
    tls = sslproto.SSLProtocol(loop, protocol, context, waiter, server_side=True, call_connection_made=True,
                               ssl_handshake_timeout=timeout)  # fmt: skip
    transport.set_protocol(tls)
    tls.connection_made(transport)
    view = memoryview(rest)
    while view:
        buffer = tls.get_buffer(len(view))
        n = min(len(buffer), len(view))
        buffer[:n] = view[:n]
        tls.buffer_updated(n)
        view = view[n:]


def _handshake_done(waiter: asyncio.Future) -> None:
    if not waiter.cancelled() and waiter.exception() is not None:
        log.info("TLS handshake after the PROXY header failed: %s", waiter.exception())
