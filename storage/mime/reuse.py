"""The metadata of a stored message from the parse of what was received: one scan per message.

SMTP parses the spooled message for its checks (the attachment limit, R-QUOTA-1). What is stored
is ``prefix + spool[k:]``: our trace headers first and, after submission's header hygiene, a
cleaned header section in place of the sent one (``k`` where the sent one ended). Only the
header section differs, so the parse of the body is kept: the new fields are read, the body's
offsets move by the difference in length, and ENVELOPE and the search fields are built from the
new fields. When the new section could change how the body is read (its Content-* fields differ,
or it is not a plain run of fields ended by a blank line) ``with_head`` says None and the caller
parses the whole message: the result is always what ``parse`` of the stored bytes gives.
"""

from __future__ import annotations

from storage.mime.envelope import build_envelope, build_search
from storage.mime.headers import split_fields
from storage.mime.parser import _HEADER_CAP, _HEADER_LINES

_POSITIONS = ("header_start", "body_start", "body_end")


def with_head(parsed: dict, prefix: bytes, head: bytes, *, search_text: bool) -> dict | None:
    """The metadata of ``prefix + head + body`` where ``parsed`` is ``parse(..., measure=True)``
    (with the same ``search_text``) of a message whose header section is ``head`` (all of it) or
    was dropped (``head`` empty: ``prefix`` ends with the section that replaces it); None when
    that cannot be known without parsing the whole message again. ``scan`` entries are dropped."""
    root = parsed["structure"]
    if head and len(head) != root["body_start"]:
        return None
    section = head or prefix  # the part of the new section that must end with its blank line
    cut = section.rfind(b"\n", 0, len(section) - 1) + 1
    if not section.endswith(b"\n") or section[cut:] not in (b"\r\n", b"\n"):
        return None  # without one, the body's first line could continue the last field
    lines = (head[:cut], prefix) if head else (b"", prefix[:cut])
    if len(prefix) + len(head) > _HEADER_CAP or any(
            part and (part[:1] in b" \t" or _HEADER_LINES.fullmatch(part) is None) for part in lines):
        return None
    new = split_fields(lines[1])
    if head:
        fields = new + parsed["fields"]
        if any(name.startswith("content-") for name, _ in new):
            return None
    else:
        fields = new
        if _content(new) != _content(parsed["fields"]):
            return None  # the body would be read differently
    delta = len(prefix) + len(head) - root["body_start"]
    envelope = build_envelope(fields)
    structure = _moved(root, delta)
    structure["header_start"] = 0
    return {
        "size": parsed["size"] + delta,
        "envelope": envelope,
        "structure": structure,
        "search": build_search(fields, parsed["search"]["body"], envelope, headers=search_text),
    }


def _content(fields: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The fields that decide how the body is read (storage.mime.part.make_part reads these)."""
    return [field for field in fields if field[0].startswith("content-")]


def _moved(part: dict, delta: int) -> dict:
    """A copy of ``part`` and its descendants with every offset moved by ``delta``, no ``scan``."""
    out = {key: value for key, value in part.items() if key != "scan"}
    if delta:
        for key in _POSITIONS:
            out[key] = part[key] + delta
    if "parts" in part:
        out["parts"] = [_moved(child, delta) for child in part["parts"]]
    if "message" in part:
        out["message"] = {**part["message"], "structure": _moved(part["message"]["structure"], delta)}
    return out
