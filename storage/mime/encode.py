"""Header text our server writes (bounces, notices, submitted mail): NFC, RFC 2047 when needed.

R-TEXT-1: Vietnamese must arrive intact at a next hop without SMTPUTF8, so non-ASCII text goes
as UTF-8 encoded-words; with SMTPUTF8 (RFC 6531/6532) the NFC text is sent as it is.
"""

from __future__ import annotations

import base64
import re
import unicodedata

_MAX_WORD_BYTES = 45  # 60 base64 characters: "=?UTF-8?B?" + 60 + "?=" = 72 ≤ 75 (RFC 2047 §2)
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*")


def encode_header(text: str, *, utf8: bool = False, fold: bool = True, word_bytes: int = _MAX_WORD_BYTES) -> str:
    """``text`` as a header value: NFC; ASCII or ``utf8`` (SMTPUTF8 next hop) as it is,
    otherwise UTF-8 "B" encoded-words that never split a character, folded with CRLF SP."""
    text = unicodedata.normalize("NFC", text)
    if text.isascii() or utf8:
        return text
    words: list[str] = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > word_bytes:
            words.append(_word(chunk))
            chunk = b""
        chunk += data
    if chunk:
        words.append(_word(chunk))
    return ("\r\n " if fold else " ").join(words)


def _word(data: bytes) -> str:
    return f"=?UTF-8?B?{base64.b64encode(data).decode('ascii')}?="


def encode_address(name: str | None, address: str, *, utf8: bool = False) -> str:
    """``Name <address>`` for From/To: a non-ASCII name encoded (or raw with ``utf8``), an ASCII
    name quoted when it has characters a phrase cannot carry as atoms."""
    if not name:
        return address
    name = unicodedata.normalize("NFC", name)
    if not name.isascii() and not utf8:
        return f"{encode_header(name, fold=False)} <{address}>"
    if _ATOM.fullmatch(name) and not name.startswith(" "):
        return f"{name} <{address}>"
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>'
