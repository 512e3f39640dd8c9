"""RFC 3501 BODY / BODYSTRUCTURE from the MIME tree cached at delivery.

Type, subtype, encoding and parameter names are sent upper-case (as RFC 3501's examples do);
parameter values exactly as parsed (RFC 2231 joined, quotes removed). Defaults per RFC 2045:
text/* without a charset gets CHARSET US-ASCII, a missing encoding is 7BIT.
"""

from __future__ import annotations

from imap.envelope import render_envelope
from imap.wire import astring, plist

_EMPTY_TEXT = {"type": "text", "subtype": "plain", "params": [], "encoding": "7bit", "size": 0, "lines": 0}


def render_body(part: dict | None, extended: bool) -> bytes:
    """``extended`` = BODYSTRUCTURE (with extension data); otherwise the BODY form."""
    part = part or _EMPTY_TEXT
    if (part.get("type") or "").lower() == "multipart":
        return _multipart(part, extended)
    return _single(part, extended)


def _params(params: list | None, ctype: str = "") -> bytes:
    items = [(str(k).upper(), v) for k, v in (params or [])]
    if ctype == "text" and not any(k == "CHARSET" for k, _ in items):
        items.insert(0, ("CHARSET", "US-ASCII"))
    if not items:
        return b"NIL"
    return plist(b"%s %s" % (astring(k), astring(v if v is not None else "")) for k, v in items)


def _tail(part: dict) -> list[bytes]:
    """disposition, language, location (the extension data common to both kinds)."""
    disp = part.get("disposition")
    if disp:
        dtype, dparams = disp[0], disp[1] if len(disp) > 1 else []
        disp_b = plist([astring(str(dtype).upper()), _params(dparams)])
    else:
        disp_b = b"NIL"
    lang = part.get("language")
    if not lang:
        lang_b = b"NIL"
    elif len(lang) == 1:
        lang_b = astring(lang[0])
    else:
        lang_b = plist(astring(x) for x in lang)
    return [disp_b, lang_b, astring(part.get("location"))]


def _multipart(part: dict, extended: bool) -> bytes:
    children = part.get("parts") or [_EMPTY_TEXT]
    items = b"".join(render_body(c, extended) for c in children)
    out = [items, astring((part.get("subtype") or "mixed").upper())]
    if extended:
        out.append(_params(part.get("params")))
        out.extend(_tail(part))
    return b"(" + b" ".join(out) + b")"


def _single(part: dict, extended: bool) -> bytes:
    ctype = (part.get("type") or "text").lower()
    subtype = (part.get("subtype") or "plain").lower()
    out = [
        astring(ctype.upper()),
        astring(subtype.upper()),
        _params(part.get("params"), ctype),
        astring(part.get("id")),
        astring(part.get("description")),
        astring((part.get("encoding") or "7bit").upper()),
        b"%d" % int(part.get("size") or 0),
    ]
    if ctype == "message" and subtype in ("rfc822", "global"):
        inner = part.get("message") or {}
        out.append(render_envelope(inner.get("envelope")))
        out.append(render_body(inner.get("structure"), extended))
        out.append(b"%d" % int(part.get("lines") or 0))
    elif ctype == "text":
        out.append(b"%d" % int(part.get("lines") or 0))
    if extended:
        out.append(astring(part.get("md5")))
        out.extend(_tail(part))
    return plist(out)
