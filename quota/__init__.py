"""Quota arithmetic and decisions (R-QUOTA-1/2), pure: no I/O, no framework, no storage.

- ``parse_size`` / ``format_size``: re-exported from ``config.sizes``, the one size grammar
  (``2GB`` = ``2GiB`` = ``2G`` = 2 × 1024³ bytes).
- ``quota.decide``: ``QuotaLimits``, ``resolve_limits`` (profile → unit class → account),
  ``decide_delivery`` (and ``highest_usage_accepted``, its bound for a check made in SQL),
  ``decide_attachments``, ``thresholds_crossed``, ``smtp_size_limit``.
- ``quota.attachments``: ``measure_attachments`` — decoded attachment bytes of a parsed message's
  part tree.
- ``quota.retention``: per-folder expiry cutoffs (R-QUOTA-2); ``quota.notices``: warning texts.
"""

from config.sizes import format_size, parse_size
from quota.attachments import AttachmentMeasure, measure_attachments
from quota.decide import (
    PROFILE_DEFAULTS,
    Decision,
    QuotaLimits,
    decide_attachments,
    decide_delivery,
    highest_usage_accepted,
    resolve_limits,
    smtp_size_limit,
    thresholds_crossed,
)

__all__ = [
    "PROFILE_DEFAULTS",
    "AttachmentMeasure",
    "Decision",
    "QuotaLimits",
    "decide_attachments",
    "decide_delivery",
    "highest_usage_accepted",
    "format_size",
    "measure_attachments",
    "parse_size",
    "resolve_limits",
    "smtp_size_limit",
    "thresholds_crossed",
]
