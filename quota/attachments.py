"""Attachment measurement (R-QUOTA-1: "20 MB of attachments per message", decoded content).

The limit is on what the recipient gets: each attachment counts its decoded bytes (base64,
quoted-printable; 7bit/8bit/binary as sent). The message is not read here: the one MIME parser
(``storage.mime.parse(..., measure=True)``, run once per message by SMTP, its result reused for
storing) decodes while it scans and leaves in every part of its tree a ``scan`` entry; this walks
that plain tree (quota/ imports no storage code).

An attachment is a leaf part that is marked ``Content-Disposition: attachment``, or has a file
name (``filename``/``name`` parameter), or is not ``text/*`` (images, PDFs, a forwarded
``message/rfc822``, counted whole). Inline text parts without a name are the letter itself and
are not counted.

Broken MIME never raises and never hides bytes: a part the parser could not read as what it
claims (a multipart without boundary or without any delimiter, nesting deeper than
``limits.mime_max_depth``, a header section over 256 KiB, the parts after the 5,000th) counts
whole as attachment bytes, and so does a letter part cut off by the end of the message; such
messages are marked ``broken``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.header import decode_header, make_header

__all__ = ["AttachmentMeasure", "measure_attachments"]


@dataclass(frozen=True)
class AttachmentMeasure:
    total_decoded_bytes: int
    parts: list[tuple[str | None, int]] = field(default_factory=list)  # (file name, decoded size)
    broken: bool = False


def measure_attachments(structure: dict) -> AttachmentMeasure:
    """Decoded attachment bytes of a message from its part tree (``parse(..., measure=True)
    ["structure"]``), in document order."""
    parts: list[tuple[str | None, int]] = []
    broken = False
    pending = [structure]
    while pending:
        part = pending.pop()
        scan = part.get("scan") or {}
        broken |= bool(scan.get("broken") or scan.get("cut"))
        if scan.get("opaque"):
            parts.append((_name(part), scan.get("raw", part["size"])))
            continue
        if "parts" in part:
            pending.extend(reversed(part["parts"]))
            continue
        if _is_attachment(part):
            parts.append((_name(part), scan.get("decoded", part["size"])))
            broken |= bool(scan.get("bad_encoding"))
        elif scan.get("cut"):  # a letter cut off: what arrived of it counts
            parts.append((_name(part), part["size"]))
    return AttachmentMeasure(sum(size for _, size in parts), parts, broken)


def _is_attachment(part: dict) -> bool:
    disposition = part.get("disposition")
    return (bool(disposition) and str(disposition[0]).lower() == "attachment") or _name(part) is not None \
        or part.get("type") != "text"


def _name(part: dict) -> str | None:
    """The file name (disposition ``filename``, else type ``name``; RFC 2231 already decoded by
    the parser), with RFC 2047 encoded-words, which some clients put there, decoded."""
    disposition = part.get("disposition") or [None, []]
    for key, params in (("filename", disposition[1] or []), ("name", part.get("params") or [])):
        for name, value in params:
            if name == key and value:
                return _text(value)
    return None


def _text(value: str) -> str:
    if "=?" in value:
        try:
            value = str(make_header(decode_header(value)))
        except Exception:  # noqa: BLE001 - malformed encoded-words: keep the raw text
            pass
    return value
