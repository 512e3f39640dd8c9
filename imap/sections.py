"""BODY[section] as byte ranges of the stored message, found through the cached MIME tree.

The stored bytes are exactly what was received, so every section is a slice of them (header
fields filtered line by line for HEADER.FIELDS): byte-exact, unlike Twisted's rebuilt headers.
"""

from __future__ import annotations

import re

from imap.fetchparse import FetchItem


class NoSuchPart(Exception):
    """The section names a part the message does not have (answered as an empty string)."""


def _is_multipart(p: dict) -> bool:
    return (p.get("type") or "").lower() == "multipart"


def _is_message(p: dict) -> bool:
    return (p.get("type") or "").lower() == "message" and (p.get("subtype") or "").lower() in ("rfc822", "global") and bool(p.get("message"))


def resolve_part(root: dict, path: tuple[int, ...]) -> tuple[dict, bool]:
    """The part a section number names, and whether it is a message (root or message/rfc822)."""
    node, at_message = root, True
    for n in path:
        if not at_message and _is_message(node):
            node = node["message"]["structure"]
            at_message = True
        if _is_multipart(node):
            parts = node.get("parts") or []
            if not 1 <= n <= len(parts):
                raise NoSuchPart
            node = parts[n - 1]
        elif n == 1:
            pass  # a non-multipart part (or single-part message) is its own part 1 (RFC 3501 §6.4.5)
        else:
            raise NoSuchPart
        at_message = False
    return node, at_message


def section_range(root: dict, size: int, item: FetchItem) -> tuple[int, int]:
    """(start, end) offsets of the section before any <partial> and field filtering."""
    node, is_root = resolve_part(root, item.part)
    text = item.text
    if not text:
        if is_root:
            return 0, size
        if _is_multipart(node) or not item.part:
            return node["body_start"], node["body_end"]
        return node["body_start"], node["body_end"]
    if text == b"MIME":
        return node["header_start"], node["body_start"]
    # HEADER / HEADER.FIELDS / TEXT apply to a message: the root or a message/rfc822 part.
    if is_root:
        msg = node
        end = size
    elif _is_message(node):
        msg = node["message"]["structure"]
        end = node["body_end"]
    else:
        raise NoSuchPart
    if text == b"TEXT":
        return msg["body_start"], end
    return msg.get("header_start", 0), msg["body_start"]


_FIELD_START = re.compile(rb"^([^\s:]+)[ \t]*:")


def filter_fields(header: bytes, names: tuple[bytes, ...], keep: bool) -> bytes:
    """Header fields whose names are (keep=True) or are not in ``names``, then the blank line."""
    wanted = {n.lower() for n in names}
    out = bytearray()
    take = False
    for line in header.splitlines(keepends=True):
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t"):
            if take:
                out += line
            continue
        m = _FIELD_START.match(line)
        take = bool(m) and ((m.group(1).lower() in wanted) == keep)
        if take:
            out += line
    return bytes(out) + b"\r\n"


def apply_partial(data: bytes, partial: tuple[int, int | None] | None) -> bytes:
    if partial is None:
        return data
    start, length = partial
    return data[start : start + length if length is not None else None]
