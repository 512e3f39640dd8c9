"""FETCH BINARY (RFC 3516): the content of a leaf part with its Content-Transfer-Encoding undone.

Pure functions over the cached MIME tree (storage/mime/parser.py: every part has ``encoding``,
``body_start``, ``body_end``): the FETCH code (imap/fetch.py) reads only the byte range of the
part from the stored message and decodes that, never the whole message; a part with an identity
encoding (7bit, 8bit, binary) is answered straight from its range, and its BINARY.SIZE from the
tree alone, without reading anything.
"""

from __future__ import annotations

import binascii

from imap.sections import NoSuchPart, _is_message, _is_multipart, resolve_part

#: encodings whose decoded form is the stored bytes
IDENTITY = frozenset({"7bit", "8bit", "binary"})
#: encodings decoded here
DECODED = frozenset({"base64", "quoted-printable"})
_B64_KEEP = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_DELETE = bytes(b for b in range(256) if b not in _B64_KEEP)


class UnknownCTE(Exception):
    """The part has a Content-Transfer-Encoding this server cannot decode (``NO [UNKNOWN-CTE]``)."""


class BinaryPart:
    """Where a BINARY section's content is in the stored message and how it is decoded.

    ``encoding`` is None when the bytes are sent as stored (an identity encoding, a multipart or
    message/rfc822 body, the whole message for ``BINARY[]``)."""

    __slots__ = ("start", "end", "encoding")

    def __init__(self, start: int, end: int, encoding: str | None) -> None:
        self.start, self.end, self.encoding = start, end, encoding

    @property
    def raw_size(self) -> int:
        return self.end - self.start


def locate(structure: dict | None, size: int, part: tuple[int, ...]) -> BinaryPart:
    """The range and encoding of ``BINARY[part]``; NoSuchPart when the message has no such
    part, UnknownCTE when its encoding is neither identity, base64 nor quoted-printable."""
    if not part:
        return BinaryPart(0, size, None)
    if structure is None:
        raise NoSuchPart
    node, _is_root = resolve_part(structure, part)
    if _is_multipart(node) or _is_message(node):
        return BinaryPart(node["body_start"], node["body_end"], None)
    encoding = (node.get("encoding") or "7bit").lower()
    if encoding in IDENTITY:
        return BinaryPart(node["body_start"], node["body_end"], None)
    if encoding not in DECODED:
        raise UnknownCTE(encoding)
    return BinaryPart(node["body_start"], node["body_end"], encoding)


def check(structure: dict | None, part: tuple[int, ...]) -> None:
    """Raise UnknownCTE before anything of a message's FETCH response is written."""
    try:
        locate(structure, 0, part)
    except NoSuchPart:
        pass


def decode(data: bytes, encoding: str | None) -> bytes:
    """The decoded content. Lenient as mail readers are: characters outside the base64
    alphabet are skipped and a truncated last group is completed."""
    if encoding is None:
        return data
    if encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    chars = data.translate(None, _B64_DELETE)
    if len(chars) % 4 == 1:
        chars = chars[:-1]
    chars += b"=" * (-len(chars) % 4)
    return binascii.a2b_base64(chars)


def decoded_size(data: bytes, encoding: str | None) -> int:
    """len(decode(data, encoding)), without building base64's decoded bytes (BINARY.SIZE)."""
    if encoding is None:
        return len(data)
    if encoding == "quoted-printable":
        return len(binascii.a2b_qp(data))
    n = len(data.translate(None, _B64_DELETE))
    return n // 4 * 3 + (0, 0, 1, 2)[n % 4]


def needs_literal8(data: bytes, encoding: str | None, declared: str | None = None) -> bool:
    """Whether the content goes out as ``~{n}`` (RFC 3516 §4.2: the decoded domain is binary):
    a decoded part or one declared ``binary`` (as Dovecot sends them), or any NUL octet."""
    return encoding is not None or declared == "binary" or b"\0" in data


def declared_encoding(structure: dict | None, part: tuple[int, ...]) -> str | None:
    if not part or structure is None:
        return None
    try:
        node, _ = resolve_part(structure, part)
    except NoSuchPart:
        return None
    return (node.get("encoding") or "7bit").lower()
