"""The ``TLS-Required: No`` header field (RFC 8689 section 5): the sender asks that the message be
delivered even where a TLS policy (per-domain ``require_tls``, verified certificates, MTA-STS,
DANE) would hold it back. Ignored when the transaction also asked for REQUIRETLS."""

from __future__ import annotations

import re

_FIELD = re.compile(rb"(?im)^TLS-Required:[ \t]*No[ \t]*\r?$")


def tls_optional(message: bytes, limit: int = 64 * 1024) -> bool:
    """Whether the header section of ``message`` has ``TLS-Required: No`` (case-insensitive)."""
    head = message[:limit]
    end = head.find(b"\r\n\r\n")
    return bool(_FIELD.search(head if end < 0 else head[: end + 2]))
