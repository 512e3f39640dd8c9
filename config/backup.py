"""``backup:``: scheduled backups with rotation (R-SEC-4; mailserver/maintenance/scheduled.py).

Each day at ``schedule`` (server local time) a backup is written to ``dir``/<date-time>,
verified, and older backups beyond ``keep_daily`` days and ``keep_weekly`` weeks are removed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

_RUN_AT_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _run_at(value: object) -> object:
    if value is None or (isinstance(value, str) and _RUN_AT_RE.match(value.strip())):
        return value.strip() if isinstance(value, str) else value
    raise PydanticCustomError("run_at", "expected a local time HH:MM such as 01:30, or null, got {got}", {"got": repr(value)})


class Backup(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schedule: Annotated[str | None, BeforeValidator(_run_at)] = None  # daily at HH:MM; null: only by hand
    dir: Path | None = None  # where the scheduled backups go (outside data_dir, ideally another disk)
    keep_daily: int = Field(default=7, ge=1)  # the newest backup of each of the last N days with one
    keep_weekly: int = Field(default=4, ge=0)  # and of each of the last M ISO weeks with one

    @model_validator(mode="after")
    def _dir_with_schedule(self) -> Backup:
        if self.schedule is not None and self.dir is None:
            raise ValueError("backup.dir: needed with backup.schedule (where the backups go)")
        return self
