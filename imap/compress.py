"""COMPRESS=DEFLATE (RFC 4978): raw deflate both ways after ``COMPRESS DEFLATE`` (the command:
imap/op/compress.py; the input side: ``IMAPServer.inflate_more``).

Output: the transport is wrapped so every write is compressed and sync-flushed (the client can
decode each response as it arrives). Input: the server inflates at most a bounded amount ahead of
what it has parsed, so a small compressed packet cannot expand into unbounded memory.
"""

from __future__ import annotations

import zlib

INFLATE_CHUNK = 64 * 1024


class DeflateTransport:
    """Delegates to the real transport; compresses what is written."""

    def __init__(self, transport) -> None:
        self._transport = transport
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)

    def write(self, data: bytes) -> None:
        self._transport.write(self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH))

    def writeSequence(self, seq) -> None:
        self.write(b"".join(seq))

    def __getattr__(self, name):
        return getattr(self._transport, name)
