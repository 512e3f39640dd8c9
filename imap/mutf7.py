"""Modified UTF-7 (RFC 3501 §5.1.3) for folder names on the wire; the store keeps NFC Unicode.

Strict on input: non-canonical forms (encoded printable ASCII, "&" not written as "&-", bad
base64, unpaired surrogates) are refused so two wire names never map to one folder.
"""

from __future__ import annotations

import base64
import binascii
import unicodedata


class MUTF7Error(ValueError):
    pass


def encode(name: str) -> bytes:
    out = bytearray()
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.extend(b"&" + base64.b64encode(raw).rstrip(b"=").replace(b"/", b",") + b"-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.extend(b"&-" if ch == "&" else ch.encode("ascii"))
        else:
            pending.append(ch)
    flush()
    return bytes(out)


def decode(wire: bytes) -> str:
    """Wire name → NFC Unicode. Raw UTF-8 is decoded as such (imap/args.py allows it only after
    ENABLE UTF8=ACCEPT)."""
    if any(b > 0x7E or b < 0x20 for b in wire):
        try:
            return unicodedata.normalize("NFC", wire.decode("utf-8"))
        except UnicodeDecodeError:
            raise MUTF7Error("folder name is neither modified UTF-7 nor UTF-8") from None
    out: list[str] = []
    i, n = 0, len(wire)
    while i < n:
        c = wire[i : i + 1]
        if c != b"&":
            out.append(c.decode("ascii"))
            i += 1
            continue
        j = wire.find(b"-", i + 1)
        if j < 0:
            raise MUTF7Error("unterminated &-sequence")
        chunk = wire[i + 1 : j]
        i = j + 1
        if not chunk:
            out.append("&")
            continue
        b64 = chunk.replace(b",", b"/")
        try:
            raw = base64.b64decode(b64 + b"=" * (-len(b64) % 4), validate=True)
            text = raw.decode("utf-16-be")
        except (binascii.Error, UnicodeDecodeError):
            raise MUTF7Error("bad modified base64") from None
        if any(0x20 <= ord(ch) <= 0x7E for ch in text) or encode(text) != b"&" + chunk + b"-":
            raise MUTF7Error("non-canonical modified UTF-7")
        out.append(text)
    return unicodedata.normalize("NFC", "".join(out))
