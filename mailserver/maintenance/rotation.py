"""Which scheduled backups to keep (R-SEC-4): the newest of each of the last ``keep_daily`` days
that have one, and the newest of each of the last ``keep_weekly`` ISO weeks that have one (as
restic's ``--keep-daily``/``--keep-weekly``). Pure: names in, names to delete out."""

from __future__ import annotations

import datetime as _dt

#: a scheduled backup's directory name: local date and time it was started
NAME_FORMAT = "%Y-%m-%dT%H%M"


def backup_name(when: _dt.datetime) -> str:
    return when.strftime(NAME_FORMAT)


def parse_name(name: str) -> _dt.datetime | None:
    try:
        return _dt.datetime.strptime(name, NAME_FORMAT)
    except ValueError:
        return None  # not ours: never deleted


def to_delete(names: list[str], keep_daily: int, keep_weekly: int) -> list[str]:
    """The backups (by name) that fall outside both rules; names not in our format are kept."""
    dated = sorted(((parse_name(n), n) for n in names if parse_name(n) is not None), reverse=True)
    keep: set[str] = set()
    days: list[_dt.date] = []
    weeks: list[tuple[int, int]] = []
    for when, name in dated:  # newest first: the first seen of a day or week is its newest
        assert when is not None
        if when.date() not in days and len(days) < keep_daily:
            days.append(when.date())
            keep.add(name)
        week = tuple(when.isocalendar())[:2]
        if week not in weeks and len(weeks) < keep_weekly:
            weeks.append(week)  # type: ignore[arg-type]
            keep.add(name)
    return sorted(n for _, n in dated if n not in keep)
