"""A header block with raw UTF-8 (RFC 6532) made fit for a next hop without SMTPUTF8.

R-TEXT-1: our users' Vietnamese must arrive intact at an older server, so each field that is not
ASCII is rewritten: its text NFC, display names, unstructured text and comments as RFC 2047
UTF-8 encoded-words, non-ASCII domains as IDNA A-labels, MIME parameters in RFC 2231 form. A
field that has no ASCII form — a UTF-8 local part, a UTF-8 Message-ID — raises
``NotDowngradable``: that message can only go to a hop with SMTPUTF8 (RFC 6531 says 5.6.7).
ASCII fields are kept byte for byte, so a message that needs nothing is returned unchanged.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from storage.mime.address import _tokens
from storage.mime.encode import encode_header
from storage.mime.headers import FIELD_NAME, decode_header, parse_content_type, parse_disposition

ADDRESS_FIELDS = frozenset({
    "from", "sender", "reply-to", "to", "cc", "bcc", "resent-from", "resent-sender", "resent-to", "resent-cc",
    "resent-bcc", "disposition-notification-to", "return-receipt-to", "errors-to",
})  # fmt: skip
ID_FIELDS = frozenset({"message-id", "in-reply-to", "references", "resent-message-id", "content-id"})
_LINE = 76  # fold target (RFC 5322 2.1.1: 78 without CRLF)
_WORD_BYTES = 30  # encoded-words of 52 characters: one fits after any usual field name


class NotDowngradable(ValueError):
    """The header carries something only SMTPUTF8 can (RFC 6531 3.7.5 → 5.6.7)."""


def split_header(message: bytes) -> tuple[bytes, bytes]:
    """(header block including its final CRLF, the rest: the blank line and the body)."""
    end = message.find(b"\r\n\r\n")
    if end < 0:
        return message, b""
    return message[: end + 2], message[end + 2 :]


def needs_utf8(message: bytes) -> bool:
    """Whether the header or a MIME part's header has 8-bit bytes (RFC 6532 UTF-8 headers)."""
    return not split_header(message)[0].isascii() or bool(_utf8_part_headers(message))


def downgrade(message: bytes) -> bytes:
    """``message`` with every non-ASCII header field, of the message and of its MIME parts, in
    its ASCII form; bodies are left as they are."""
    for start, end in sorted(_utf8_part_headers(message), reverse=True):  # offsets stay valid
        message = message[:start] + _header_block(message[start:end]) + message[end:]
    return _header_block(message)


def _header_block(message: bytes) -> bytes:
    head, rest = split_header(message)
    if head.isascii():
        return message
    return b"".join(_field(raw) for raw in _raw_fields(head)) + rest


def _utf8_part_headers(message: bytes) -> list[tuple[int, int]]:
    """(start, end) of each non-ASCII header block of a MIME part (not the message's own)."""
    head, rest = split_header(message)
    if rest.isascii():
        return []
    from storage.mime import parse  # the full parser only for mail with 8-bit bytes in its body

    spans: list[tuple[int, int]] = []

    def walk(node, top: bool) -> None:
        if isinstance(node, dict):
            if not top and isinstance(node.get("header_start"), int) and isinstance(node.get("body_start"), int):
                spans.append((node["header_start"], node["body_start"]))
            for value in node.values():
                walk(value, False)
        elif isinstance(node, list):
            for value in node:
                walk(value, False)

    walk(parse(message).get("structure") or {}, True)
    return [(s, e) for s, e in set(spans) if len(head) <= s < e and not message[s:e].isascii()]


def _raw_fields(head: bytes) -> list[bytes]:
    """Each field with its continuation lines, CRLF included, exactly as sent."""
    fields: list[bytes] = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line + b"\r\n"
        else:
            fields.append(line + b"\r\n")
    return fields


def _field(raw: bytes) -> bytes:
    if raw.isascii():
        return raw
    match = FIELD_NAME.match(raw)
    if not match:
        raise NotDowngradable("a non-ASCII header line that is no field")
    name = match.group(1).decode("ascii")
    try:
        value = raw[match.end() :].decode("utf-8")
    except UnicodeDecodeError:
        value = decode_header(raw[match.end() :])  # legacy 8-bit: the text people would read
    value = unicodedata.normalize("NFC", " ".join(value.split()))
    key = name.lower()
    if key in ADDRESS_FIELDS:
        text = address_list(value)
    elif key in ID_FIELDS:
        raise NotDowngradable(f"{name} with a non-ASCII identifier")
    elif key == "content-type":
        text = _content_type(value)
    elif key == "content-disposition":
        text = _disposition(value)
    elif key == "received":
        text = _received(value)
    else:  # unstructured text (Subject, Comments, X-…): decoded as a reader would, re-encoded
        text = encode_header(decode_header(value.encode("utf-8")), fold=False, word_bytes=_WORD_BYTES)
    return fold_line(f"{name}: {text}").encode("ascii") + b"\r\n"


def fold_line(line: str) -> str:
    """Fold at spaces so lines stay near 76 characters (encoded-words are never split)."""
    name, _, rest = line.partition(" ")
    out, current = [], name
    for word in rest.split(" "):
        if current != name and len(current) + 1 + len(word) > _LINE:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    out.append(current)
    return "\r\n ".join(out)


# -- addresses ----------------------------------------------------------------------------------


def address_list(value: str) -> str:
    """An address-list header value with display names encoded, domains in IDNA."""
    tokens = _tokens(value)
    pieces: list[str] = []
    segment: list[tuple[str, str]] = []
    in_angle = False
    for token in tokens:
        kind, text = token
        if kind == "s" and text in "<>":
            in_angle = text == "<"
        if kind == "s" and not in_angle and text in ",;:":
            pieces.append(_phrase(segment) if text == ":" else _mailbox(segment))
            pieces.append(text)
            segment = []
        else:
            segment.append(token)
    pieces.append(_mailbox(segment))
    out = ""
    for piece in pieces:
        if piece in (",", ";"):
            out = out.rstrip() + piece + " "
        elif piece == ":":
            out = out.rstrip() + ": "
        elif piece:
            out += piece
    return out.strip()


def _mailbox(tokens: list[tuple[str, str]]) -> str:
    if not any(kind != " " for kind, _ in tokens):
        return ""
    if ("s", "<") in tokens:
        start = tokens.index(("s", "<"))
        end = tokens.index(("s", ">")) if ("s", ">") in tokens[start:] else len(tokens)
        phrase = _phrase(tokens[:start])
        spec = _addr_spec(tokens[start + 1 : end])
        comments = _comments(tokens[end + 1 :])
        return f"{phrase + ' ' if phrase else ''}<{spec}>{comments}"
    return _addr_spec([t for t in tokens if t[0] != "c"]) + _comments(tokens)


def _phrase(tokens: list[tuple[str, str]]) -> str:
    words = [text for kind, text in tokens if kind in "qa" or (kind == "s" and text in "@.")]
    text = " ".join(" ".join(words).split())
    if not text:
        return ""
    if "=?" in text:  # encoded-words already there: the text they stand for
        text = decode_header(text.encode("utf-8"))
    if not text.isascii():
        return encode_header(text, fold=False, word_bytes=_WORD_BYTES)
    if re.fullmatch(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comments(tokens: list[tuple[str, str]]) -> str:
    out = ""
    for kind, text in tokens:
        if kind == "c" and text:
            out += f" ({encode_header(text, fold=False, word_bytes=_WORD_BYTES) if not text.isascii() else text})"
    return out


def _addr_spec(tokens: list[tuple[str, str]]) -> str:
    body = "".join(_quote(text) if kind == "q" else text for kind, text in tokens if kind not in " c")
    local, at, domain = body.rpartition("@")
    if not at:
        local, domain = body, ""
    if not local.isascii():
        raise NotDowngradable(f"the address {body} has a non-ASCII local part")
    return f"{local}@{idna_domain(domain)}" if at else local


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def idna_domain(domain: str) -> str:
    """A domain in A-labels (IDNA 2008, UTS 46 mapping); an ASCII domain as it is."""
    if domain.isascii():
        return domain
    import idna

    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise NotDowngradable(f"the domain {domain} has no IDNA form: {exc}") from None


# -- MIME parameters and trace fields -------------------------------------------------------------


def _params(params: list[list[str]]) -> str:
    out = ""
    for name, value in params:
        if value.isascii():
            if re.fullmatch(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+", value):
                out += f"; {name}={value}"
            else:
                out += '; {}="{}"'.format(name, value.replace("\\", "\\\\").replace('"', '\\"'))
        else:  # RFC 2231: charset''percent-encoded UTF-8
            out += f"; {name}*=UTF-8''{quote(value.encode('utf-8'), safe='')}"
    return out


def _content_type(value: str) -> str:
    parsed = parse_content_type(value)
    if parsed is None:
        raise NotDowngradable("an unparseable non-ASCII Content-Type")
    kind, subtype, params = parsed
    return f"{kind}/{subtype}{_params(params)}"


def _disposition(value: str) -> str:
    parsed = parse_disposition(value)
    if parsed is None:
        raise NotDowngradable("an unparseable non-ASCII Content-Disposition")
    return f"{parsed[0]}{_params(parsed[1])}"


_FOR_CLAUSE = re.compile(r"\s+for\s+<?[^\s;>]*>?", re.I)


def _received(value: str) -> str:
    """Trace text: a UTF-8 ``for`` address is dropped (RFC 6857 3.2.8), domains go as A-labels."""
    value = _FOR_CLAUSE.sub(lambda m: m.group(0) if m.group(0).isascii() else "", value)
    words = []
    for word in value.split(" "):
        if not word.isascii():
            core = word.strip("();[]")
            if re.fullmatch(r"[^\s@()<>\[\];]+(\.[^\s@()<>\[\];]+)+", core):
                word = word.replace(core, idna_domain(core))
            else:
                word = encode_header(word, fold=False, word_bytes=_WORD_BYTES)
        words.append(word)
    return " ".join(words)
