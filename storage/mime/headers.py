"""Header fields: splitting a header block, RFC 2047 decoding, RFC 2045/2231 parameters.

Raw values stay as sent for IMAP (ENVELOPE carries encoded-words raw); ``decode_header`` gives the
NFC text people read and search (R-TEXT-1).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from urllib.parse import unquote_to_bytes

from storage.mime.detect import guess_vietnamese, is_weak_label, known_charset
from storage.mime.vietnamese import decode_legacy, vietnamese_charset

_UNFOLD = re.compile(rb"\r?\n(?=[ \t])")
FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")


def raw_text(value: bytes) -> str:
    """Header bytes as text for IMAP: UTF-8 (RFC 6532), else latin-1 so every byte survives."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def split_fields(block: bytes) -> list[tuple[str, bytes]]:
    """(lower-case name, unfolded value bytes) for each field of a header block, in order.

    Lines that are neither a field nor a continuation are skipped (the scanner already ends the
    block at the first such line, so here they only come from odd input).
    """
    fields: list[tuple[str, bytes]] = []
    names = _NAMES
    for name, value in _FIELD.findall(block):
        lower = names.get(name)
        if lower is None:
            lower = name.decode("ascii").lower()
            if len(names) < 4096:
                names[name] = lower
        if b"\n" in value:
            value = _UNFOLD.sub(b"", value)
        fields.append((lower, value.strip(b" \t\r")))
    return fields


# A field with its continuation lines, in one match (what unfolding the block and matching
# FIELD_NAME per line gives; tests/test_mime.py holds the two to the same answer).
_FIELD = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)(?:[ \t]|\r?\n(?=[ \t]))*:([^\n]*(?:\n[ \t][^\n]*)*)", re.M)
_NAMES: dict[bytes, str] = {}  # field name as sent → lower-case str, for the names mail repeats


# -- RFC 2047 ------------------------------------------------------------------------------------

_ENCODED_WORD = re.compile(rb"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([BbQq])\?([^?\s]*)\?=")
_Q_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def _word_bytes(encoding: bytes, payload: bytes) -> bytes | None:
    """The bytes an encoded-word carries, or None when it is malformed."""
    if encoding in b"Bb":
        payload = payload.rstrip(b"=")
        payload += b"=" * (-len(payload) % 4)
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return None
    return _Q_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), payload.replace(b"_", b" "))


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes in ``charset`` → NFC text; legacy Vietnamese and mislabelled text are detected.

    Never raises: bytes invalid in the charset are replaced (display only).
    """
    label = (charset or "").strip().lower()
    legacy = vietnamese_charset(label)
    if legacy:
        return decode_legacy(data, legacy)
    if not label or is_weak_label(label) or label in ("utf-8", "utf8"):
        return guess_vietnamese(data, label or None)[0]
    if not known_charset(label):
        return guess_vietnamese(data, None)[0]
    try:
        return unicodedata.normalize("NFC", data.decode(label, errors="replace"))
    except Exception:  # noqa: BLE001 - a codec chosen by the sender must not fail a delivery
        return guess_vietnamese(data, None)[0]


def decode_header(raw: str | bytes) -> str:
    """RFC 2047 / RFC 6532 / raw 8-bit header text → NFC text for display and search.

    Adjacent encoded-words are joined (the whitespace between them dropped) and words of the same
    charset are decoded together, so a letter split across two words comes out whole. A malformed
    word or one in an unknown charset is left as sent. Raw 8-bit bytes that are not UTF-8 go
    through the Vietnamese detector (TCVN3, VNI, VISCII, windows-1258, else windows-1252).
    """
    data = _to_bytes(raw) if isinstance(raw, str) else bytes(raw)
    data = _UNFOLD.sub(b"", data).replace(b"\r", b"").replace(b"\n", b"")
    if b"=?" not in data:
        return _plain(data) if not data.isascii() else data.decode("ascii")
    segments: list[tuple[str, bytes]] = []  # (charset, bytes) for a word, ("", bytes) for text
    pos = 0
    for match in _ENCODED_WORD.finditer(data):
        gap = data[pos:match.start()]
        charset = match.group(1).decode("ascii", errors="replace").lower()
        payload = _word_bytes(match.group(2), match.group(3)) if known_charset(charset) else None
        if payload is None:  # left as sent
            segments.append(("", gap + match.group(0)))
        else:
            if gap and (gap.strip(b" \t") or not segments or not segments[-1][0]):
                segments.append(("", gap))
            segments.append((charset, payload))
        pos = match.end()
    segments.append(("", data[pos:]))
    out: list[str] = []
    index = 0
    while index < len(segments):
        charset, chunk = segments[index]
        index += 1
        if not charset:
            out.append(_plain(chunk))
            continue
        chunks = [chunk]
        while index < len(segments) and segments[index][0] == charset:
            chunks.append(segments[index][1])
            index += 1
        out.append(decode_text(b"".join(chunks), charset))
    return unicodedata.normalize("NFC", "".join(out))


def _to_bytes(text: str) -> bytes:
    """Text back to bytes; surrogate escapes return to the bytes they stood for."""
    try:
        return text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace")


def _plain(data: bytes) -> str:
    if data.isascii():
        return data.decode("ascii")
    return decode_text(data, None)


# -- RFC 2045 / 2231 parameters ------------------------------------------------------------------

_TOKEN = re.compile(r"[^\s()<>@,;:\\\"/\[\]?=]+")
_PARAM_NAME = re.compile(r"[^\s=;\"]+")


def _skip_cfws(text: str, pos: int) -> int:
    while pos < len(text):
        if text[pos] in " \t\r\n":
            pos += 1
        elif text[pos] == "(":
            pos = comment_end(text, pos) + 1
        else:
            break
    return pos


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """The content of the quoted string opening at ``pos`` and the position after it."""
    out: list[str] = []
    pos += 1
    while pos < len(text) and text[pos] != '"':
        if text[pos] == "\\" and pos + 1 < len(text):
            pos += 1
        out.append(text[pos])
        pos += 1
    return "".join(out), pos + 1


def _raw_params(text: str) -> list[tuple[str, str]]:
    """``; name=value`` pairs as sent (quotes removed), tolerant of every kind of damage."""
    params: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        semi = text.find(";", pos)
        if semi < 0:
            break
        pos = _skip_cfws(text, semi + 1)
        match = _PARAM_NAME.match(text, pos)
        if not match:
            continue
        name = match.group(0).lower()
        pos = _skip_cfws(text, match.end())
        if pos >= len(text) or text[pos] != "=":
            continue
        pos = _skip_cfws(text, pos + 1)
        if pos < len(text) and text[pos] == '"':
            value, pos = _quoted(text, pos)
        else:
            end = text.find(";", pos)
            end = len(text) if end < 0 else end
            value, pos = text[pos:end].strip(), end
        params.append((name, value))
    return params


def _decode_2231(sections: list[tuple[int, bool, str]]) -> str:
    """Join RFC 2231 sections (number, encoded, value); the first encoded one names the charset."""
    sections.sort(key=lambda s: s[0])
    charset = ""
    chunks: list[bytes] = []
    for index, (_, encoded, value) in enumerate(sections):
        if encoded:
            if index == 0 and value.count("'") >= 2:
                charset, _, value = value.split("'", 2)
            chunks.append(unquote_to_bytes(value))
        else:
            chunks.append(value.encode("utf-8"))
    return decode_text(b"".join(chunks), charset or "utf-8")


_SECTION = re.compile(r"^(.+?)\*(?:(\d+)(\*)?|())$")


def parse_params(text: str) -> list[list[str]]:
    """[[name, value], ...]: names lower-case, values keep their case, RFC 2231 decoded to text.

    A parameter sent both plainly and in RFC 2231 form is given once, with the RFC 2231 value.
    """
    order: list[str] = []
    plain: dict[str, str] = {}
    extended: dict[str, list[tuple[int, bool, str]]] = {}
    for name, value in _raw_params(text):
        match = _SECTION.match(name)
        if match:
            base = match.group(1)
            number = int(match.group(2)) if match.group(2) else 0
            encoded = match.group(4) is not None or bool(match.group(3))
            extended.setdefault(base, []).append((number, encoded, value))
        else:
            base = name
            plain.setdefault(base, value)
        if base not in order:
            order.append(base)
    result: list[list[str]] = []
    for base in order:
        if base in extended:
            result.append([base, unicodedata.normalize("NFC", _decode_2231(extended[base]))])
        else:
            result.append([base, unicodedata.normalize("NFC", plain[base])])
    return result


_CONTENT_TYPE = re.compile(r"\s*([^\s/;()<>@,:\\\"\[\]?=]+)\s*/\s*([^\s/;()<>@,:\\\"\[\]?=]+)")


def parse_content_type(value: str | None) -> tuple[str, str, list[list[str]]] | None:
    """(type, subtype, params) lower-cased type/subtype, or None when absent or unparseable."""
    if value is None:
        return None
    match = _CONTENT_TYPE.match(value)
    if not match:
        return None
    return match.group(1).lower(), match.group(2).lower(), parse_params(value[match.end():])


def parse_disposition(value: str | None) -> list | None:
    """[type, [[k, v], ...]] with the type lower-cased, or None."""
    if value is None:
        return None
    match = _TOKEN.match(value.strip())
    if not match:
        return None
    return [match.group(0).lower(), parse_params(value.strip()[match.end():])]


def comment_end(text: str, pos: int) -> int:
    """Index of the ``)`` closing the RFC 5322 comment that opens at ``text[pos]`` (nested
    comments and quoted pairs respected), or ``len(text)`` when it is never closed."""
    depth = 0
    while pos < len(text):
        if text[pos] == "\\":
            pos += 1
        elif text[pos] == "(":
            depth += 1
        elif text[pos] == ")":
            depth -= 1
            if depth == 0:
                return pos
        pos += 1
    return len(text)
