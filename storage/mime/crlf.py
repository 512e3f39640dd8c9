"""Bare LF line ends made CRLF before a message is stored (RFC 5322 §2.3, RFC 3501 §4.3, RFC 1939).

Mail that arrives with bare LF (over SMTP or APPEND) is stored with CRLF, before it is hashed and
parsed, so that MIME offsets, RFC822.SIZE and the bytes IMAP and POP3 serve all agree; DKIM and
S/MIME canonicalise to CRLF, so signatures still verify. The common all-CRLF message is not
copied: it is only counted (``bytes.count``), and a file source is read in blocks.
"""

from __future__ import annotations

import re
import tempfile
from typing import BinaryIO

_BARE_LF = re.compile(rb"(?<!\r)\n")
_BLOCK = 1024 * 1024
#: A normalised copy of a file source stays in memory up to this size, then goes to disk.
_SPOOL_IN_MEMORY = 1024 * 1024


def has_bare_lf(data: bytes, after_cr: bool = False) -> bool:
    """Whether ``data`` has an LF not preceded by CR (``after_cr``: the byte before it was CR)."""
    lf = data.count(b"\n")
    if not lf:
        return False
    return lf != data.count(b"\r\n") + (1 if after_cr and data[:1] == b"\n" else 0)


class CrlfStream:
    """Block by block: each block with its bare LFs made CRLF, an LF split from its CR across two
    blocks left alone."""

    def __init__(self) -> None:
        self._after_cr = False

    def feed(self, block: bytes) -> bytes:
        if not block:
            return block
        after_cr, self._after_cr = self._after_cr, block[-1:] == b"\r"
        if not has_bare_lf(block, after_cr):
            return block
        if after_cr and block[:1] == b"\n":
            return b"\n" + _BARE_LF.sub(b"\r\n", block[1:])
        return _BARE_LF.sub(b"\r\n", block)


def to_crlf(data: bytes) -> bytes:
    """``data`` itself when it has no bare LF, else a copy with CRLF line ends."""
    return _BARE_LF.sub(b"\r\n", data) if has_bare_lf(data) else data


def file_to_crlf(source: BinaryIO) -> BinaryIO:
    """``source`` itself (at 0) when it has no bare LF; else a new temporary file (at 0, the
    caller closes it) with CRLF line ends, written block by block."""
    start = source.tell()
    stream = CrlfStream()
    while block := source.read(_BLOCK):
        if stream.feed(block) is not block:
            break
    else:
        source.seek(start)
        return source
    source.seek(start)
    out = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)
    stream = CrlfStream()
    while block := source.read(_BLOCK):
        out.write(stream.feed(block))
    out.seek(0)
    return out
