"""How a body is kept in ``blobs.data``: as delivered, or zstd-compressed (``blobs.codec``).

Mail is mostly text and base64, which zstd at a low level shrinks several times for a few tens
of microseconds per message (Dovecot's zlib plug-in makes the same trade). A body that does not
shrink by at least an eighth is kept as it is, so already-compressed attachments cost no CPU on
every read. Bodies kept as files (large ones on SQLite) are not compressed: they are streamed
and read by range.
"""

from __future__ import annotations

import threading

import zstandard

ZSTD = "zstd"
LEVEL = 3
_MIN_SAVING = 8  # keep raw unless compressed <= 7/8 of the original

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


def pack(data: bytes) -> tuple[bytes, str | None]:
    """(what to store, its codec): the zstd frame when it saves enough, else the data itself."""
    if len(data) < 256:
        return data, None
    packed = _compressor().compress(data)
    if len(packed) * _MIN_SAVING > len(data) * (_MIN_SAVING - 1):
        return data, None
    return packed, ZSTD


def unpack(stored: bytes, codec: str | None) -> bytes:
    if codec is None:
        return bytes(stored)
    if codec == ZSTD:
        return _decompressor().decompress(stored)
    raise ValueError(f"unknown blob codec {codec!r}")


def unpack_head(stored: bytes, codec: str | None, length: int) -> bytes:
    """The first ``length`` bytes, decompressing no more of the frame than needed."""
    if codec is None:
        return bytes(stored[:length])
    if codec == ZSTD:
        with _decompressor().stream_reader(bytes(stored)) as reader:
            return reader.read(length)
    raise ValueError(f"unknown blob codec {codec!r}")
