"""Decoded text of text/plain and text/html parts for body search, capped (R-TEXT-1).

Only these parts are decoded, and only up to ~1 MB of text per message in total: enough for
any letter people search, while a 30 MB attachment costs nothing but its scan.
"""

from __future__ import annotations

import binascii

from storage.mime.headers import decode_text
from storage.mime.text import html_to_text

BODY_TEXT_CAP = 1_000_000  # characters of decoded text kept per message
_RAW_CAP = 4 * BODY_TEXT_CAP  # encoded bytes kept per part (quoted-printable can triple)


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """Undo base64 / quoted-printable leniently: damaged input yields what can be read."""
    if encoding == "base64":
        try:
            return binascii.a2b_base64(data)
        except (binascii.Error, ValueError):
            clean = bytes(b for b in data if b in _B64_ALPHABET)
            clean = clean[: len(clean) - len(clean) % 4]
            try:
                return binascii.a2b_base64(clean)
            except (binascii.Error, ValueError):
                return b""
    if encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    return data


_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


class BodyText:
    """Collects raw part bodies while scanning and keeps their decoded text."""

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._size = 0

    def wants_more(self) -> bool:
        return self._size < BODY_TEXT_CAP

    def keep(self, buffer: bytearray, chunk: bytes) -> None:
        if len(buffer) < _RAW_CAP:
            buffer += chunk

    def add(self, buffer: bytearray, part: dict) -> None:
        """Decode one finished part (its transfer encoding, charset, HTML) into the text."""
        if not self.wants_more():
            return
        charset = next((value for name, value in part["params"] if name == "charset"), None)
        data = decode_transfer(bytes(buffer), part["encoding"])
        text = decode_text(data, charset)
        if part["subtype"] == "html":
            text = html_to_text(text)
        text = text.replace("\r\n", "\n")[: BODY_TEXT_CAP - self._size]
        self._texts.append(text)
        self._size += len(text)

    def text(self) -> str:
        return "\n".join(t for t in self._texts if t)
