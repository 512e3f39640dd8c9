"""What a report reads from the store (blocking: call it off the event loop)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mailserver.reports.checks import Mailbox


class UnknownUnit(LookupError):
    pass


def mailboxes(store: Any, unit_code: str | None = None) -> tuple[list[Mailbox], str | None]:
    """Every account as a report's Mailbox, or those of the unit ``unit_code`` and its sub-units
    (its mailbox and the people registered in them), with the unit's name; UnknownUnit else."""
    units = {r.account.id: tuple(r.unit_path) for r in store.org.directory_rows()}
    accounts = store.accounts.list_accounts()
    label = None
    if unit_code is not None:
        unit = store.org.get_unit(unit_code)
        if unit is None:
            raise UnknownUnit(f"no unit {unit_code!r} (mailserver unit list)")
        label = " / ".join(unit.path)
        accounts = [a for a in accounts if units.get(a.id, ())[:len(unit.path)] == tuple(unit.path)]
    return [Mailbox(a.id, a.address, a.display_name, a.kind.value, " / ".join(units.get(a.id, ())), a.state.value,
                    a.used_bytes) for a in accounts], label


def facts(store: Any, start: dt.date, end: dt.date, boxes: list[Mailbox]) -> list:
    store.usage.flush_counts()  # this process's own counts (the server writes its own every few seconds)
    return store.usage.day_facts(start, end, [b.account_id for b in boxes])
