"""How a body is kept in ``blobs.data``: as delivered, or with its body zstd-compressed
(``blobs.codec``).

Mail is mostly text and base64, which zstd at a low level shrinks several times for a few tens
of microseconds per message (Dovecot's zlib plug-in makes the same trade). The header section
stays as it is, ahead of the compressed rest (codec ``zstd:N``, N its length): clients fetch
headers of whole folders (``BODY.PEEK[HEADER.FIELDS (...)]`` at every sync), and a header read
from a compressed message would cost a decompression of the whole message (~20 µs for 10 KB,
a third more time for such a FETCH). A body whose rest does not shrink by at least an eighth is
kept as it is, so already-compressed attachments cost no CPU on every read. Bodies kept as
files (large ones on SQLite) are not compressed: they are streamed and read by range.
"""

from __future__ import annotations

import threading

import zstandard

ZSTD = "zstd"  # the whole body compressed (still read; no longer written)
LEVEL = 3
_MIN_SAVING = 8  # keep raw unless the stored form is <= 7/8 of the original

# A zstd context serves one operation at a time (python-zstandard's instances are not thread-safe:
# sharing one between the SMTP workers and FETCH threads crashed the process): one per thread.
_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    try:
        return _local.compressor
    except AttributeError:
        _local.compressor = zstandard.ZstdCompressor(level=LEVEL)
        return _local.compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    try:
        return _local.decompressor
    except AttributeError:
        _local.decompressor = zstandard.ZstdDecompressor()
        return _local.decompressor


def pack(data: bytes, raw_prefix: int = 0) -> tuple[bytes, str | None]:
    """(what to store, its codec): the first ``raw_prefix`` bytes (the header section) as they
    are, then the rest as a zstd frame, when that saves enough; else the data itself."""
    raw_prefix = max(0, min(raw_prefix, len(data)))
    if len(data) - raw_prefix < 256:
        return data, None
    packed = _compressor().compress(data[raw_prefix:])
    if (raw_prefix + len(packed)) * _MIN_SAVING > len(data) * (_MIN_SAVING - 1):
        return data, None
    return data[:raw_prefix] + packed, f"{ZSTD}:{raw_prefix}"


def raw_prefix(codec: str | None) -> int | None:
    """How many leading bytes of the stored form are the body's own (None: all of them)."""
    if codec is None:
        return None
    if codec == ZSTD:
        return 0
    if codec.startswith(ZSTD + ":"):
        return int(codec[len(ZSTD) + 1 :])
    raise ValueError(f"unknown blob codec {codec!r}")


def unpack(stored: bytes, codec: str | None) -> bytes:
    n = raw_prefix(codec)
    if n is None:
        return bytes(stored)
    return bytes(stored[:n]) + _decompressor().decompress(bytes(stored[n:]))


def unpack_head(stored: bytes, codec: str | None, length: int) -> bytes:
    """The first ``length`` bytes; ``stored`` may be cut short after the raw prefix when no more
    is wanted."""
    n = raw_prefix(codec)
    if n is None or length <= n:
        return bytes(stored[:length])
    return unpack(stored, codec)[:length]
