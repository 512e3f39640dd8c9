"""A part's header-derived fields (RFC 2045, RFC 2183, RFC 3501 BODYSTRUCTURE defaults)."""

from __future__ import annotations

import re

from storage.mime.headers import parse_content_type, parse_disposition, raw_text

_TOKEN = re.compile(r"[^\s;()<>@,:\\\"/\[\]?=]+")


def _first(fields: list[tuple[str, bytes]], name: str) -> bytes | None:
    for field, value in fields:
        if field == name:
            return value
    return None


def _text(fields: list[tuple[str, bytes]], name: str) -> str | None:
    value = _first(fields, name)
    return None if value is None else raw_text(value).strip()


def make_part(fields: list[tuple[str, bytes]], in_digest: bool) -> dict:
    """The header-derived fields of a part, with RFC 3501 / RFC 2045 defaults."""
    content_type = parse_content_type(_text(fields, "content-type"))
    if content_type is None:
        content_type = ("message", "rfc822", []) if in_digest else ("text", "plain", [])
    kind, subtype, params = content_type
    if kind == "text" and not any(name == "charset" for name, _ in params):
        params.append(["charset", "us-ascii"])
    encoding = _TOKEN.match(_text(fields, "content-transfer-encoding") or "")
    encoding = encoding.group(0).lower() if encoding else "7bit"
    language = _text(fields, "content-language")
    return {
        "type": kind, "subtype": subtype, "params": params,
        "id": _text(fields, "content-id"), "description": _text(fields, "content-description"),
        "encoding": encoding, "md5": _text(fields, "content-md5"),
        "disposition": parse_disposition(_text(fields, "content-disposition")),
        "language": [tag.strip() for tag in language.split(",") if tag.strip()] if language else None,
        "location": _text(fields, "content-location"),
    }


def param(part: dict, name: str) -> str | None:
    """A parameter of a part's Content-Type, None when absent."""
    for key, value in part["params"]:
        if key == name:
            return value
    return None
