"""Report periods: ``2026Q4`` (a quarter, R-OPS-2 hcm-q4) or ``2026`` (a year, lamdong)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Period:
    label: str
    start: dt.date
    end: dt.date  # inclusive

    def months(self) -> list[tuple[int, int]]:
        return [(self.start.year, m) for m in range(self.start.month, self.end.month + 1)]


def quarter(text: str) -> Period:
    """``2026Q4`` → 1 October to 31 December 2026; ValueError naming the expected form."""
    found = re.fullmatch(r"(\d{4})[Qq]([1-4])", text.strip())
    if not found:
        raise ValueError(f"expected a quarter such as 2026Q4, got {text!r}")
    year, q = int(found[1]), int(found[2])
    start = dt.date(year, 3 * q - 2, 1)
    end = dt.date(year + 1, 1, 1) if q == 4 else dt.date(year, 3 * q + 1, 1)
    return Period(f"Quý {q}/{year}", start, end - dt.timedelta(days=1))


def year(text: str) -> Period:
    if not re.fullmatch(r"\d{4}", text.strip()):
        raise ValueError(f"expected a year such as 2026, got {text!r}")
    y = int(text)
    return Period(f"Năm {y}", dt.date(y, 1, 1), dt.date(y, 12, 31))
