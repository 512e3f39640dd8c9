"""Announced maintenance windows (``maintenance:``, R-OPS-3: users are told in advance of
downtime). IMAP logins get ``* OK [ALERT]`` from ``notice_hours`` before a window until its end."""

from __future__ import annotations

import datetime as dt

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Window(_Frozen):
    start: AwareDatetime  # with its offset: 2026-12-20T22:00:00+07:00
    end: AwareDatetime
    note_vi: str = ""  # added to the notice ("nâng cấp máy chủ")
    note_en: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Maintenance(_Frozen):
    windows: tuple[Window, ...] = ()
    notice_hours: int = Field(default=72, ge=0)  # the alert starts this long before a window

    def current(self, now: dt.datetime) -> Window | None:
        """The window being announced or under way at ``now`` (the earliest), else None."""
        due = [w for w in self.windows if w.start - dt.timedelta(hours=self.notice_hours) <= now < w.end]
        return min(due, key=lambda w: w.start) if due else None
