"""One request and its reply over a new TCP or Unix-domain connection, on the loop's socket
primitives.

spamd and clamd take one request per connection. What this costs our process per message is the
budget of the filter clients (bench/filter_clients.py): aiospamc ~0.8 ms, asyncio streams or a
Protocol ~0.23 ms, these bare non-blocking socket calls ~0.16 ms (clamd, loaded 2-CPU machine).
The request goes out with one ``send`` when the socket buffer takes it (a letter does).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Sequence

READ = 65536


async def exchange(host: str, port: int, request: Sequence[bytes], *, until: bytes | None = None,
                   path: str | None = None) -> bytes:
    """Send ``request`` to ``host:port`` (or the Unix socket ``path``); the reply up to the peer's
    end of stream, or up to the first read that ends with ``until``. Without ``until`` our side is
    shut for writing after the request (spamc does the same). The caller bounds it in time."""
    loop = asyncio.get_running_loop()
    if path is not None:
        family, address = socket.AF_UNIX, path
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if not _is_address(host):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            family, host = infos[0][0], infos[0][4][0]
        address = (host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
        data = b"".join(request)
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            await loop.sock_sendall(sock, memoryview(data)[sent:])
        if until is None:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            got = await loop.sock_recv(sock, READ)
            if not got:
                break
            chunks.append(got)
            if until is not None and got.endswith(until):
                break
        return b"".join(chunks)
    finally:
        sock.close()


def _is_address(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True
