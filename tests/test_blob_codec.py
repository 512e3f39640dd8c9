"""Bodies are kept compressed when that pays, read back byte for byte, and bodies stored before
compression existed (codec NULL) still read (storage/codec.py)."""

from __future__ import annotations

import os

import pytest

from storage import codec


def test_text_is_packed_and_unpacked_exactly():
    data = ("Kính gửi đơn vị, công văn số 12/UBND.\r\n" * 300).encode()
    stored, how = codec.pack(data)
    assert how == "zstd:0" and len(stored) < len(data) // 4
    assert codec.unpack(stored, how) == data
    assert codec.unpack_head(stored, how, 100) == data[:100]
    assert codec.unpack_head(stored, how, len(data) + 10) == data


@pytest.mark.parametrize("data", [os.urandom(50_000), b"short", b""])
def test_what_does_not_shrink_is_kept_as_it_is(data):
    assert codec.pack(data) == (data, None)
    assert codec.unpack(data, None) == data
    assert codec.unpack_head(data, None, 3) == data[:3]


def test_the_header_section_stays_readable_without_decompressing():
    header = b"Subject: =?utf-8?q?B=C3=A1o_c=C3=A1o?=\r\nFrom: a@example.gov.vn\r\n\r\n"
    data = header + ("Kính gửi đơn vị, công văn số 12/UBND.\r\n" * 300).encode()
    stored, how = codec.pack(data, len(header))
    assert how == f"zstd:{len(header)}" and stored.startswith(header) and len(stored) < len(data) // 4
    assert codec.unpack(stored, how) == data
    assert codec.unpack_head(stored[: len(header)], how, len(header)) == header  # cut short: no decompression
    assert codec.unpack_head(stored, how, len(header) + 50) == data[: len(header) + 50]
    assert codec.unpack(codec.pack(data)[0], "zstd") != b"" and codec.unpack(
        __import__("zstandard").ZstdCompressor().compress(data), "zstd") == data  # the whole-body form still reads


def test_an_unknown_codec_is_an_error_not_garbage():
    with pytest.raises(ValueError, match="unknown blob codec"):
        codec.unpack(b"x", "brotli")


def test_many_threads_at_once_each_get_their_own_bytes():
    """zstd contexts are per thread: many threads packing and unpacking at once (as SMTP
    workers and FETCH threads do) neither crash nor mix up bodies."""
    import concurrent.futures

    def round_trip(i: int) -> bool:
        data = (f"Thư số {i}: " + "báo cáo quý " * 200).encode()
        for _ in range(50):
            stored, how = codec.pack(data)
            if codec.unpack(stored, how) != data or codec.unpack_head(stored, how, 20) != data[:20]:
                return False
        return True

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        assert all(pool.map(round_trip, range(64)))
