"""Quota arithmetic and decisions (R-QUOTA-1), pure like Dovecot's quota.c: the callers (SMTP at
RCPT and after DATA, IMAP APPEND/COPY/MOVE, the storage commit) pass usage and limits in and map
the :class:`Decision` to their protocol (``552 5.2.2``, ``452 4.2.2``, ``NO [OVERQUOTA]``).

Limits are resolved in layers, lowest first: the profile's default, the unit's class, the
account's own override (``mailserver quota set ADDRESS 5GB``). ``None`` as a limit means unlimited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from config.sizes import format_size, parse_size

__all__ = [
    "HEADERS_BODY_ALLOWANCE",
    "PROFILE_DEFAULTS",
    "Decision",
    "QuotaLimits",
    "base64_encoded_size",
    "decide_attachments",
    "decide_delivery",
    "highest_usage_accepted",
    "resolve_limits",
    "smtp_size_limit",
    "thresholds_crossed",
]

GiB = 1024**3
MiB = 1024**2


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """Per-account limits in bytes (and messages); None = unlimited."""

    mailbox_bytes: int | None
    attachment_bytes: int | None  # decoded attachment content per message (R-QUOTA-1)
    messages: int | None = None


#: R-QUOTA-1: lamdong art. 6 (2 GB / 20 MB, which the other profiles follow), hcm-q4 art. 4.2.
PROFILE_DEFAULTS: dict[str, QuotaLimits] = {
    "molisa": QuotaLimits(2 * GiB, 20 * MiB),
    "lamdong": QuotaLimits(2 * GiB, 20 * MiB),
    "most": QuotaLimits(2 * GiB, 20 * MiB),
    "moj": QuotaLimits(2 * GiB, 20 * MiB),
    "hcm-q4": QuotaLimits(1 * GiB, 15 * MiB),
    "none": QuotaLimits(2 * GiB, 20 * MiB),
}


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of a quota check. ``resource`` is ``storage``, ``messages`` or ``attachments``;
    ``permanent`` when the item can never fit, even in an empty mailbox (552 rather than 452)."""

    ok: bool
    reason: str | None = None
    resource: str | None = None
    used: int = 0
    limit: int | None = None
    requested: int = 0
    permanent: bool = False

    @property
    def message_vi(self) -> str:
        if self.ok or self.limit is None:
            return ""
        if self.resource == "attachments":
            return (
                f"Tổng dung lượng tập tin đính kèm ({format_size(self.requested)}) vượt quá "
                f"giới hạn {format_size(self.limit)} cho mỗi thư."
            )
        if self.resource == "messages":
            return f"Hộp thư đã đạt số thư tối đa ({self.limit})."
        return (
            f"Hộp thư không đủ dung lượng: đã dùng {format_size(self.used)} trên "
            f"{format_size(self.limit)}, thư cần {format_size(self.requested)}."
        )

    @property
    def message_en(self) -> str:
        if self.ok or self.limit is None:
            return ""
        if self.resource == "attachments":
            return (
                f"The attachments total {format_size(self.requested)}, over the limit of "
                f"{format_size(self.limit)} per message."
            )
        if self.resource == "messages":
            return f"The mailbox holds its maximum number of messages ({self.limit})."
        return (
            f"The mailbox is full: {format_size(self.used)} of {format_size(self.limit)} "
            f"used, the message needs {format_size(self.requested)}."
        )


OK = Decision(ok=True)


def decide_delivery(
    used_bytes: int, used_messages: int, limits: QuotaLimits, size: int, count: int = 1
) -> Decision:
    """May ``count`` messages totalling ``size`` bytes (one delivery; an IMAP COPY/MOVE of a set)
    be added to a mailbox with this usage? Reaching a limit exactly is accepted."""
    if size < 0 or used_bytes < 0 or used_messages < 0 or count < 0:
        raise ValueError("sizes and counts are not negative")
    cap = limits.mailbox_bytes
    if cap is not None and used_bytes + size > cap:
        return Decision(
            ok=False, reason="mailbox_full", resource="storage", used=used_bytes, limit=cap,
            requested=size, permanent=size > cap,
        )
    most = limits.messages
    if most is not None and used_messages + count > most:
        return Decision(
            ok=False, reason="too_many_messages", resource="messages", used=used_messages,
            limit=most, requested=count, permanent=count > most,
        )
    return OK


def highest_usage_accepted(limits: QuotaLimits, size: int, count: int = 1) -> tuple[int | None, int | None]:
    """``decide_delivery`` turned inside out for a check made by a database: the highest
    (used_bytes, used_messages) at which ``count`` messages of ``size`` bytes are accepted, None
    where any usage is. The store puts these bounds in the WHERE of the statement that charges
    the usage, so the check and the charge are one atomic step while the rule stays here:
    ``decide_delivery(u, n, limits, size, count).ok`` exactly when ``u <= bytes_bound`` and
    ``n <= messages_bound``. A negative bound accepts nothing (usage is never negative)."""
    if size < 0 or count < 0:
        raise ValueError("sizes and counts are not negative")
    cap, most = limits.mailbox_bytes, limits.messages
    return (None if cap is None else cap - size), (None if most is None else most - count)


def decide_attachments(total_decoded: int, limits: QuotaLimits) -> Decision:
    """R-QUOTA-1: the decoded attachment bytes of one message against the per-message limit
    (exactly the limit is accepted)."""
    cap = limits.attachment_bytes
    if cap is not None and total_decoded > cap:
        return Decision(
            ok=False, reason="attachments_too_big", resource="attachments", limit=cap,
            requested=total_decoded, permanent=True,
        )
    return OK


def thresholds_crossed(
    before: int, after: int, limit: int | None, thresholds: tuple[int, ...] = (80, 90, 100)
) -> list[int]:
    """Percentages of ``limit`` that usage reached going from ``before`` to ``after``: each is
    reported once, on the change that reaches it (``before < t% <= after``), so a warning goes
    out once per crossing. Integer arithmetic: no float rounding at the boundary."""
    if limit is None or limit <= 0 or after <= before:
        return []
    return sorted(t for t in thresholds if before * 100 < t * limit <= after * 100)


#: Whole-message room beyond the encoded attachments: the header section (a few KB; up to
#: ~100 KB with long Received/DKIM/ARC chains), the text and HTML bodies of an official letter
#: (rarely above 1 MB), MIME part headers and an S/MIME or OpenPGP signature. 2 MiB covers them
#: with a margin; mail above it is refused by SIZE before any data is sent.
HEADERS_BODY_ALLOWANCE = 2 * MiB


def base64_encoded_size(n: int, line_length: int = 76) -> int:
    """Bytes of ``n`` bytes in base64 with a CRLF after every ``line_length`` characters
    (RFC 2045 6.8: 4 characters per 3 bytes, lines of at most 76)."""
    chars = 4 * -(-n // 3)
    return chars + 2 * -(-chars // line_length)


def smtp_size_limit(attachment_limit: int, allowance: int = HEADERS_BODY_ALLOWANCE) -> int:
    """The SMTP SIZE (RFC 1870) implied by the attachment limit: a message carrying exactly the
    allowed attachment bytes in base64 still fits: 20 MiB → 28,697,872 + 2 MiB = 30,795,024."""
    if attachment_limit < 0:
        raise ValueError("the attachment limit is not negative")
    return base64_encoded_size(attachment_limit) + allowance


_FIELDS = tuple(f.name for f in fields(QuotaLimits))


def _apply(limits: QuotaLimits, layer: Mapping[str, int | str | None] | QuotaLimits | None,
           name: str) -> QuotaLimits:
    if layer is None:
        return limits
    if isinstance(layer, QuotaLimits):
        return layer
    unknown = set(layer) - set(_FIELDS)
    if unknown:
        raise ValueError(f"{name}: unknown quota keys {sorted(unknown)}; known: {list(_FIELDS)}")
    values = {k: None if v is None else parse_size(v) for k, v in layer.items()}
    return replace(limits, **values)


def resolve_limits(
    profile_defaults: QuotaLimits,
    unit_class: Mapping[str, int | str | None] | QuotaLimits | None = None,
    account_override: Mapping[str, int | str | None] | QuotaLimits | None = None,
) -> QuotaLimits:
    """Effective limits (R-QUOTA-1 "special cases get their own limits"): each layer replaces
    only the keys it names; a key set to None there means unlimited; sizes may be written as
    ``parse_size`` accepts (``"5GB"``). A QuotaLimits layer replaces everything below it."""
    limits = _apply(profile_defaults, unit_class, "unit class")
    return _apply(limits, account_override, "account override")
