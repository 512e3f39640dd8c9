"""R-BOX-1: one personal mailbox per staff member (molisa art. 6.1, lamdong 5.2, most 12.3b,
moj 4, hcm-q4 4.1b). The server knows accounts, not people, so a second mailbox for the same
person is recognised by what the operator gives: the same name (folded: case, tones and
spacing ignored) in the same unit. Two real namesakes in one unit exist (the address rules
number them, R-ADDR-1/2): the operator says so explicitly and the account is created.

Pure: the caller reads the existing accounts and passes them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from storage.mime import fold


@dataclass(frozen=True, slots=True)
class Holder:
    """An existing personal account as this rule sees it."""

    address: str
    name: str
    unit_id: int | None


def same_person(name: str, unit_id: int | None, holders: Iterable[Holder]) -> Holder | None:
    """The existing account that looks like this person's mailbox already, or None."""
    key = fold(" ".join(name.split()))
    for holder in holders:
        if holder.unit_id == unit_id and fold(" ".join(holder.name.split())) == key:
            return holder
    return None


def refusal(name: str, holder: Holder, unit_label: str | None) -> str:
    where = f"in unit {unit_label}" if unit_label else "with no unit"
    return (f"{name} {where} already has a personal mailbox, {holder.address}: one per person (R-BOX-1). "
            "If this is another person with the same name, add --another-person")
