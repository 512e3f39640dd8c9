"""A part's header-derived fields (RFC 2045, RFC 2183, RFC 3501 BODYSTRUCTURE defaults)."""

from __future__ import annotations

import re

from storage.mime.headers import parse_content_type, parse_disposition, raw_text

_TOKEN = re.compile(r"[^\s;()<>@,:\\\"/\[\]?=]+")


def _text(first: dict[str, bytes], name: str) -> str | None:
    value = first.get(name)
    return None if value is None else raw_text(value).strip()


def make_part(fields: list[tuple[str, bytes]], in_digest: bool) -> dict:
    """The header-derived fields of a part, with RFC 3501 / RFC 2045 defaults."""
    first: dict[str, bytes] = {}  # each Content-* field's first value, in one pass
    for name, value in fields:
        if name.startswith("content-") and name not in first:
            first[name] = value
    content_type = parse_content_type(_text(first, "content-type"))
    if content_type is None:
        content_type = ("message", "rfc822", []) if in_digest else ("text", "plain", [])
    kind, subtype, params = content_type
    if kind == "text" and not any(name == "charset" for name, _ in params):
        params.append(["charset", "us-ascii"])
    encoding = _TOKEN.match(_text(first, "content-transfer-encoding") or "")
    encoding = encoding.group(0).lower() if encoding else "7bit"
    language = _text(first, "content-language")
    return {
        "type": kind, "subtype": subtype, "params": params,
        "id": _text(first, "content-id"), "description": _text(first, "content-description"),
        "encoding": encoding, "md5": _text(first, "content-md5"),
        "disposition": parse_disposition(_text(first, "content-disposition")),
        "language": [tag.strip() for tag in language.split(",") if tag.strip()] if language else None,
        "location": _text(first, "content-location"),
    }


def param(part: dict, name: str) -> str | None:
    """A parameter of a part's Content-Type, None when absent."""
    for key, value in part["params"]:
        if key == name:
            return value
    return None
