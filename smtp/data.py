"""Streaming DATA: read the message from the socket into a spool file without buffering it whole.

aiosmtpd buffers the whole message (3.9x its size in RAM, loop stalls at end of data) and refuses
a message with one body line over 1000 bytes (docs/libraries.md, aiosmtpd). Here the data is read
in blocks with ``StreamReader.readuntil(b"\\r\\n.\\r\\n")`` (never past the terminator, so commands
pipelined after it stay in the reader), dot-unstuffed block by block (RFC 5321 section 4.5.2), bare
LF line ends made CRLF (storage/mime/crlf.py: what IMAP and POP3 serve must have CRLF lines) and
written to a ``SpooledTemporaryFile`` (memory below a threshold, disk above). Only the exact
``<CRLF>.<CRLF>`` ends the data (no bare-LF smuggling). Oversize and overlong lines are detected
while streaming; the rest of the data is still read so the session stays in sync, then refused.

BDAT (RFC 3030 CHUNKING) goes through the same sink (``Chunks``): chunks of an exact size, no
dot-stuffing and no terminator; with BODY=BINARYMIME the bytes are kept as sent (no line-end
repair, no line-length limit), otherwise bare LF is repaired and long lines refused as for DATA.
"""

from __future__ import annotations

import asyncio
import enum
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from storage.mime.crlf import CrlfStream

TERMINATOR = b"\r\n.\r\n"
#: Longest line (bytes, counting its line ending) we take. RFC 5321 says 1000, but a real MTA must not lose
#: mail over a long line; a line beyond this is abuse, not a message.
MAX_LINE = 1024 * 1024
#: The start of the message kept in memory while it is spooled, so that the checks that only need
#: the header section (Authentication-Results) do not read the spool in a worker thread.
HEAD_PREFIX = 64 * 1024


class DataState(enum.Enum):
    OK = "ok"
    TOO_BIG = "too_big"  # over the size limit: 552 5.3.4
    LINE_TOO_LONG = "line_too_long"  # a line over MAX_LINE: 500 5.5.2


class DotUnstuffer:
    """Pure: turns raw DATA blocks into message bytes in ``sink``, tracking size and line length.

    Blocks are consecutive slices of the raw stream, excluding the final ``.\\r\\n``. The initial
    tail is a virtual CRLF (the one that ended the DATA command) so a leading dot is unstuffed.
    """

    def __init__(self, sink: BinaryIO, max_size: int | None, max_line: int = MAX_LINE, *, stuffed: bool = True,
                 binary: bool = False) -> None:  # fmt: skip
        """``stuffed``: DATA (dot-stuffed); False for BDAT chunks. ``binary``: BODY=BINARYMIME."""
        self.stuffed = stuffed
        self.binary = binary
        self.sink = sink
        self.max_size = max_size
        self.max_line = max_line
        self.size = 0  # message bytes after unstuffing, counted even past the limit
        self.state = DataState.OK
        self._tail = b"\r\n"  # last two raw bytes seen
        self._line = 0  # length of the current, unfinished line
        self.prefix = bytearray()  # the first HEAD_PREFIX message bytes
        self._crlf = CrlfStream()  # bare LF line ends are stored as CRLF

    def feed(self, block: bytes) -> None:
        if not block:
            return
        if self.stuffed:
            text = (self._tail + block).replace(b"\r\n.", b"\r\n")[len(self._tail) :]
            self._tail = (self._tail + block)[-2:]
        else:
            text = block
        if not self.binary:
            text = self._crlf.feed(text)
        self.size += len(text)
        if not self.binary:
            self._check_lines(text)
        if self.state is DataState.OK and self.max_size is not None and self.size > self.max_size:
            self.state = DataState.TOO_BIG
        if self.state is DataState.OK:
            self.sink.write(text)
            if len(self.prefix) < HEAD_PREFIX:
                self.prefix += text[: HEAD_PREFIX - len(self.prefix)]

    def _check_lines(self, text: bytes) -> None:
        last = text.rfind(b"\n")
        if last < 0:
            self._line += len(text)
        else:
            first = text.find(b"\n")
            longest = self._line + first + 1
            if self._line + len(text) > self.max_line:  # rare: look at every line of this block
                start = 0
                while (end := text.find(b"\n", start)) >= 0:
                    longest = max(longest, end + 1 - start + (self._line if start == 0 else 0))
                    start = end + 1
            self._line = len(text) - last - 1
            if longest > self.max_line:
                self._too_long()
        if self._line > self.max_line:
            self._too_long()

    def _too_long(self) -> None:
        if self.state is DataState.OK:
            self.state = DataState.LINE_TOO_LONG


@dataclass
class DataResult:
    state: DataState
    size: int
    spool: BinaryIO | None  # positioned at 0; None unless state is OK. Caller closes it.
    head: bytes | None = None  # the header section with its blank line, when it ends in HEAD_PREFIX


def header_section(prefix: bytes) -> bytes | None:
    """The header section (through the first CRLF CRLF) when ``prefix`` holds its end, else None
    (the caller reads the spool: smtp.outbound.hygiene.read_header decides the odd cases)."""
    end = prefix.find(b"\r\n\r\n")
    return bytes(prefix[: end + 4]) if end >= 0 else None


async def _start(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    """Read byte by byte while the stream so far could be the start of the terminator.

    The CRLF before the first line was consumed with the DATA command, so an empty message
    (``.\\r\\n`` at once) or a first line followed by the terminator is only seen here. Usually one
    to four bytes (a run of leading empty lines is read a byte at a time, no dearer per byte than
    the command loop); then ``readuntil`` takes over and never splits a terminator between blocks.
    """
    seen = b"\r\n"
    while True:
        if seen.endswith(TERMINATOR):
            return seen[2:-3], True
        if not any(seen.endswith(TERMINATOR[:k]) for k in (4, 3, 2, 1)):
            return seen[2:], False
        seen += await reader.readexactly(1)


async def read_data(
    reader: asyncio.StreamReader,
    spool_factory: Callable[[], BinaryIO],
    *,
    max_size: int | None,
) -> DataResult:
    """Read DATA up to and including the terminator into a new spool file. The idle timeout is
    the caller's (it runs from the last bytes received, see smtp/protocol.py)."""
    spool = spool_factory()
    try:
        unstuffer = DotUnstuffer(spool, max_size)
        first, done = await _start(reader)
        unstuffer.feed(first)
        while not done:
            try:
                block = await reader.readuntil(TERMINATOR)
                block, done = block[:-3], True  # keep the CRLF that ends the last line
            except asyncio.LimitOverrunError as e:
                block = await reader.read(e.consumed)
            unstuffer.feed(block)
        if unstuffer.state is not DataState.OK:
            spool.close()
            return DataResult(unstuffer.state, unstuffer.size, None)
        spool.seek(0)
        return DataResult(DataState.OK, unstuffer.size, spool, header_section(unstuffer.prefix))
    except BaseException:
        spool.close()
        raise


#: BDAT chunks are read from the socket in blocks of at most this many bytes
CHUNK_BLOCK = 256 * 1024


class Chunks:
    """The BDAT chunks of one message (RFC 3030), spooled as they arrive; the caller owns it
    until ``result()`` hands the spool on (or ``close()`` drops it)."""

    def __init__(self, spool_factory: Callable[[], BinaryIO], *, max_size: int | None, binary: bool) -> None:
        self.spool: BinaryIO | None = spool_factory()
        self.sink = DotUnstuffer(self.spool, max_size, stuffed=False, binary=binary)
        self.received = 0  # octets on the wire so far (the BDAT sizes)

    async def read(self, reader: asyncio.StreamReader, size: int) -> None:
        """Read exactly ``size`` octets of the chunk (in blocks: memory stays bounded)."""
        left = size
        while left:
            block = await reader.readexactly(min(left, CHUNK_BLOCK))
            left -= len(block)
            self.received += len(block)
            self.sink.feed(block)

    def result(self) -> DataResult:
        spool, self.spool = self.spool, None
        assert spool is not None
        if self.sink.state is not DataState.OK:
            spool.close()
            return DataResult(self.sink.state, self.sink.size, None)
        spool.seek(0)
        return DataResult(DataState.OK, self.sink.size, spool, header_section(self.sink.prefix))

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None


async def skip_chunk(reader: asyncio.StreamReader, size: int) -> None:
    """Read and drop a chunk that is refused (the session stays in step with the client)."""
    left = size
    while left:
        left -= len(await reader.readexactly(min(left, CHUNK_BLOCK)))


def spool_factory(directory: Path, threshold: int) -> Callable[[], BinaryIO]:
    """Spool files kept in memory up to ``threshold`` bytes, then in ``directory`` on disk."""

    def make() -> BinaryIO:
        return tempfile.SpooledTemporaryFile(max_size=threshold, mode="w+b", dir=directory)

    return make
