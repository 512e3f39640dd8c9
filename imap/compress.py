"""COMPRESS=DEFLATE (RFC 4978): raw deflate both ways after ``COMPRESS DEFLATE``.

Output: the transport is wrapped so every write is compressed and sync-flushed (the client can
decode each response as it arrives). Input: the server inflates at most a bounded amount ahead of
what it has parsed, so a small compressed packet cannot expand into unbounded memory.
"""

from __future__ import annotations

import zlib

from imap.wire import Atom, ParseError

OK, NO = b"OK", b"NO"
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


class CompressCommand:
    _inflate = None
    _zin = b""

    def do_COMPRESS(self, tag, mechanism):
        if mechanism.upper() != b"DEFLATE":
            return NO, b"[CANNOT] Only DEFLATE is supported"
        if self._inflate is not None:
            return NO, b"[COMPRESSIONACTIVE] Already compressing"
        self._respond(OK, tag, b"DEFLATE active")
        self._secure = self.is_secure()
        self.transport = DeflateTransport(self.transport)
        self._inflate = zlib.decompressobj(-15)
        # Whatever followed the command is already compressed (clients may not pipeline it).
        self._zin, self._buf[:] = bytes(self._buf), b""
        return None

    auth_COMPRESS = select_COMPRESS = (do_COMPRESS, lambda self, tokens: _mechanism(tokens))

    def inflate_more(self) -> None:
        """Inflate buffered input while less than a line limit's worth waits to be parsed."""
        while self._zin and len(self._buf) < 2 * self.max_line:
            try:
                out = self._inflate.decompress(self._zin, INFLATE_CHUNK)
            except zlib.error:
                self._zin = b""
                self.write_lines([b"* BYE Corrupt compressed data"])
                self.transport.loseConnection()
                return
            self._zin = self._inflate.unconsumed_tail
            self._buf += out
            if not out:
                break


def _mechanism(tokens):
    if not tokens or not isinstance(tokens[0], Atom):
        raise ParseError("COMPRESS needs a mechanism")
    return bytes(tokens[0]), tokens[1:]
