"""Incremental Content-Transfer-Encoding decoders that count bytes instead of keeping them.

Each counter is fed a body in arbitrary chunks and keeps at most a few bytes between chunks (an
unfinished base64 quad, an unfinished quoted-printable line), so the parser measures a 20 MiB
attachment's decoded size (R-QUOTA-1) without its decoded content ever being held.
"""

from __future__ import annotations

import binascii

__all__ = ["Base64Counter", "QuotedPrintableCounter", "RawCounter", "counter_for"]

_MAX_LINE = 64 * 1024  # a quoted-printable "line" longer than this is decoded in pieces
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_B64_DELETE = bytes(b for b in range(256) if b not in _B64_ALPHABET)


class RawCounter:
    """Counts the bytes of a body as sent (``raw``) and as decoded for its encoding."""

    def __init__(self) -> None:
        self.raw = 0
        self.decoded = 0
        self.broken = False

    def feed(self, data: bytes | bytearray) -> None:
        self.raw += len(data)
        self.decoded += len(data)

    def close(self) -> None:
        pass


class Base64Counter(RawCounter):
    """Incremental base64 decoding in 4-character groups; padding ends a segment (encoders that
    concatenate segments exist), characters outside the alphabet are skipped as decoders do."""

    def __init__(self) -> None:
        super().__init__()
        self.carry = b""

    def feed(self, data: bytes | bytearray) -> None:
        self.raw += len(data)
        chars = bytes(data).translate(None, _B64_DELETE)
        if b"=" not in chars:
            self._decode(chars)
            return
        pieces = chars.split(b"=")
        for piece in pieces[:-1]:
            self._decode(piece)
            self._end_segment()
        self._decode(pieces[-1])

    def _decode(self, piece: bytes) -> None:
        chars = self.carry + piece
        whole = len(chars) // 4 * 4
        self.decoded += len(binascii.a2b_base64(chars[:whole]))
        self.carry = chars[whole:]

    def _end_segment(self) -> None:
        rest = len(self.carry)
        self.decoded += (0, 0, 1, 2)[rest]
        self.broken |= rest == 1
        self.carry = b""

    def close(self) -> None:
        self._end_segment()


class QuotedPrintableCounter(RawCounter):
    """Decodes whole lines at a time, so no ``=XX`` escape or soft break is split."""

    def __init__(self) -> None:
        super().__init__()
        self.carry = b""

    def feed(self, data: bytes | bytearray) -> None:
        self.raw += len(data)
        chars = self.carry + bytes(data)
        cut = chars.rfind(b"\n") + 1
        if cut == 0 and len(chars) > _MAX_LINE:  # an endless line: do not split "=XY"
            cut = len(chars)
            escape = chars.rfind(b"=", cut - 2)
            cut = escape if escape >= 0 else cut
        self.decoded += len(binascii.a2b_qp(chars[:cut]))
        self.carry = chars[cut:]

    def close(self) -> None:
        self.decoded += len(binascii.a2b_qp(self.carry))
        self.carry = b""


def counter_for(encoding: str) -> RawCounter:
    if encoding == "base64":
        return Base64Counter()
    if encoding == "quoted-printable":
        return QuotedPrintableCounter()
    return RawCounter()  # 7bit, 8bit, binary, and unknown encodings counted as sent
