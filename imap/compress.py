"""COMPRESS=DEFLATE (RFC 4978): raw deflate both ways after ``COMPRESS DEFLATE`` (the command:
imap/op/compress.py).

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


class Inflater:
    """The input side: compressed bytes received, inflated only as the parser makes room."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(-15)
        self.pending = b""  # compressed input not inflated yet

    def inflate_into(self, buf: bytearray, limit: int) -> bool:
        """Inflate into ``buf`` while it holds less than ``limit`` bytes; False on corrupt input."""
        while self.pending and len(buf) < limit:
            try:
                out = self._zlib.decompress(self.pending, INFLATE_CHUNK)
            except zlib.error:
                self.pending = b""
                return False
            self.pending = self._zlib.unconsumed_tail
            buf += out
            if not out:
                break
        return True
