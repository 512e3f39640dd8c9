"""Settings of the reports (``reports:``): how often mailboxes must be checked (R-OPS-1) and how
long the daily counters are kept (R-OPS-2).

Why in the profile: lamdong asks unit mailboxes to be read 4 times a day and personal ones twice
(art. 11.4, 12.2); hcm-q4 asks unit mailboxes to be read in the morning and in the afternoon
(art. 8.2). ``mailserver report checks`` compares the recorded checks with these rules.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Period = Literal["morning", "afternoon"]
#: local hours of each period: morning before noon, afternoon from noon to the end of the day
PERIOD_HOURS = {"morning": range(0, 12), "afternoon": range(12, 24)}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CheckRule(_Frozen):
    """At least ``per_day`` checks a day, and at least one in each of ``periods``."""

    per_day: int = Field(default=0, ge=0)
    periods: tuple[Period, ...] = ()

    def __str__(self) -> str:  # as the compliance matrix shows it: "4/day", "morning+afternoon"
        return " ".join(p for p in (f"{self.per_day}/day" if self.per_day else "", "+".join(self.periods)) if p) or "none"


class Reports(_Frozen):
    # by mailbox kind (unit, group, personal); a kind without a rule is listed, never "short"
    checks: dict[Literal["unit", "group", "personal"], CheckRule] = {}
    working_days_only: bool = True  # Saturdays and Sundays are not held against anyone
    keep_years: int = Field(default=5, ge=1)  # daily counters older than this are removed
