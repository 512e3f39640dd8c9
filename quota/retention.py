"""Retention (R-QUOTA-2): which messages a folder's rule expires at a given time.

The seeds make deleting old mail the user's duty ("định kỳ xoá bỏ các thư cũ … thư rác, thư
quảng cáo, thư đã quá hạn 06 tháng", most art. 17.3, hcm-q4 art. 11.8; lamdong art. 12.2). Mail
in a unit mailbox is an official incoming document (R-BOX-2), so nothing here expires ordinary
folders by default: :data:`DEFAULT_RULES` only empty Junk and Trash. The profiles of the two
regulations that require it (most, hcm-q4) add "every folder, older than 6 months"; a unit's
archive the operator keeps is excluded by ``retention.keep``.

``retention run`` asks :func:`cutoffs` for an account's folders and expunges the messages whose
internal date is before their folder's cutoff (:func:`expired`).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DEFAULT_RULES", "RetentionRule", "cutoffs", "expired"]


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """Messages in ``folder`` older than the period expire. ``folder`` is a folder name
    (``Archive/2019``), a special-use attribute (``\\Junk``, ``\\Trash``: the folder's role,
    whatever the user renamed it to) or ``*`` for every folder."""

    folder: str
    older_than_days: int | None = None
    older_than_months: int | None = None

    def __post_init__(self) -> None:
        where = f"retention rule for {self.folder!r}"
        if (self.older_than_days is None) == (self.older_than_months is None):
            raise ValueError(f"{where}: give one of older_than_days, older_than_months")
        if (self.older_than_days or 0) < 0 or (self.older_than_months or 0) < 0:
            raise ValueError(f"{where}: the period is not negative")

    def matches(self, name: str, special_use: str | None) -> bool:
        return self.specificity(name, special_use) is not None

    def specificity(self, name: str, special_use: str | None) -> int | None:
        """2 for the folder's own name, 1 for its role, 0 for ``*``; None when it does not apply."""
        if self.folder == "*":
            return 0
        if self.folder.startswith("\\"):
            return 1 if special_use and special_use.lower() == self.folder.lower() else None
        if self.folder.upper() == "INBOX":
            return 2 if name.upper() == "INBOX" else None
        return 2 if name == self.folder else None

    def cutoff(self, now: dt.datetime) -> dt.datetime:
        """Messages dated strictly before this instant have expired."""
        if self.older_than_days is not None:
            return now - dt.timedelta(days=self.older_than_days)
        index = now.month - 1 - (self.older_than_months or 0)
        year, month = now.year + index // 12, index % 12 + 1
        day = min(now.day, calendar.monthrange(year, month)[1])  # 31 Aug - 6 months = 28/29 Feb
        return now.replace(year=year, month=month, day=day)


DEFAULT_RULES: tuple[RetentionRule, ...] = (
    RetentionRule("\\Junk", older_than_days=30),
    RetentionRule("\\Trash", older_than_days=30),
)


def cutoffs(
    folders: Iterable[tuple[str, str | None]], rules: Iterable[RetentionRule], now: dt.datetime
) -> dict[str, dt.datetime]:
    """Cutoff per folder name for the folders some rule covers; ``folders`` are (name,
    special-use) pairs. The most specific rule applies (name, then role, then ``*``), so
    "Junk 30 days, everything else 6 months" reads as written; among equally specific rules the
    one keeping mail longest wins: deleting official mail too early cannot be undone."""
    rules = tuple(rules)
    result: dict[str, dt.datetime] = {}
    for name, special_use in folders:
        ranked = [(r.specificity(name, special_use), r) for r in rules]
        applicable = [(rank, r) for rank, r in ranked if rank is not None]
        if applicable:
            best = max(rank for rank, _ in applicable)
            result[name] = min(r.cutoff(now) for rank, r in applicable if rank == best)
    return result


def expired(internal_date: dt.datetime, cutoff: dt.datetime | None) -> bool:
    """Whether a message dated ``internal_date`` has expired under ``cutoff`` (None: kept)."""
    return cutoff is not None and internal_date < cutoff
