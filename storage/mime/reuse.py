"""The metadata of a stored message from the parse of what was received: one scan per message.

SMTP parses the spooled message for its checks (the attachment limit, R-QUOTA-1). What is stored
is ``prefix + spool[k:]``: our trace headers first and, after submission's header hygiene, a
cleaned header section in place of the sent one (``k`` where the sent one ended). Only the
header section differs, so the parse of the body is kept: the new header section is read alone,
the body's offsets move by the difference in length, and ENVELOPE and the search fields are built
from the new fields. When the new section could change how the body is read (its Content-*
fields differ, or it is not a plain run of fields) ``with_head`` says None and the caller parses
the whole message: the result is always what ``parse`` of the stored bytes gives.
"""

from __future__ import annotations

from storage.mime.envelope import build_envelope, build_search
from storage.mime.headers import split_fields
from storage.mime.parser import _HEADER_CAP, _HEADER_LINES
from storage.mime.part import make_part

_POSITIONS = ("header_start", "body_start", "body_end")


def with_head(parsed: dict, head: bytes, *, search_text: bool) -> dict | None:
    """``parsed`` (``parse`` of a message, with the same ``search_text``) with its header section
    replaced by ``head``; None when that cannot be done without parsing the whole message again.
    The ``scan`` entries of ``parse(measure=True)`` are dropped."""
    root = parsed["structure"]
    # Only a section ended by its blank line: without one, the first line of the body could read
    # as a continuation of the new section's last field.
    cut = head.rfind(b"\n", 0, len(head) - 1) + 1
    if not head.endswith(b"\n") or head[cut:] not in (b"\r\n", b"\n"):
        return None
    lines = head[:cut]
    if len(lines) > _HEADER_CAP or head[:1] in (b" ", b"\t"):
        return None
    if lines and _HEADER_LINES.fullmatch(lines) is None:
        return None
    fields = split_fields(lines)
    if any(root.get(key) != value for key, value in make_part(fields, False).items()):
        return None  # the body would be read differently (or the parse made the root text/plain)
    delta = len(head) - root["body_start"]
    envelope = build_envelope(fields)
    structure = _moved(root, delta)
    structure["header_start"] = 0
    return {
        "size": parsed["size"] + delta,
        "envelope": envelope,
        "structure": structure,
        "search": build_search(fields, parsed["search"]["body"], envelope, headers=search_text),
    }


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
