"""Pure decisions of the content filters (table-tested in tests/test_filters_units.py)."""

from __future__ import annotations

import re

from smtp.filters.spamd import SpamResult

_SAFE = re.compile(r"[^A-Za-z0-9_.,\- ]")


def spam_action(score: float, junk_score: float | None, reject_score: float | None) -> str:
    """``reject`` at or above ``reject_score``, ``junk`` at or above ``junk_score``, else ``deliver``."""
    if reject_score is not None and score >= reject_score:
        return "reject"
    if junk_score is not None and score >= junk_score:
        return "junk"
    return "deliver"


def spam_headers(result: SpamResult, hostname: str) -> bytes:
    """X-Spam-* fields as SpamAssassin writes them (what users' rules and clients know)."""
    spam = result.score >= result.required
    tests = ",".join(_SAFE.sub("", r) for r in result.rules) or "none"
    lines = [
        f"X-Spam-Checker-Version: SpamAssassin on {_SAFE.sub('', hostname)}",
        f"X-Spam-Flag: {'YES' if spam else 'NO'}",
        f"X-Spam-Score: {result.score:.1f}",
        f"X-Spam-Status: {'Yes' if spam else 'No'}, score={result.score:.1f} required={result.required:.1f}",
        f"\ttests={tests}",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def unscanned_header(name: str, reason: str) -> bytes:
    """Fail-open: the message is delivered, and says which filter did not look at it."""
    return f"X-Filter-Unscanned: {_SAFE.sub('', name)} ({_SAFE.sub('', reason)})\r\n".encode("ascii")


def quarantine_header(milter: str, reason: str) -> bytes:
    return f"X-Quarantine: milter {_SAFE.sub('', milter)}: {_SAFE.sub('', reason)[:200]}\r\n".encode("ascii")
