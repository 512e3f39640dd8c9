"""Settings of the Sieve filters (``sieve:``): per-user scripts run at delivery (RFC 5228), managed
over ManageSieve (RFC 5804, ``listeners.managesieve``, off unless configured) and the portal's
vacation page (RFC 5230)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from config.sizes import parse_size


def _size(value: object) -> object:
    try:
        return parse_size(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise PydanticCustomError("byte_size", "{reason}", {"reason": str(exc)}) from None


def _zone(value: object) -> object:
    if isinstance(value, str) and re.fullmatch(r"[+-](0\d|1[0-4])[0-5]\d", value.strip()):
        return value.strip()
    raise PydanticCustomError("zone", "expected a UTC offset such as +0700, got {got}", {"got": repr(value)})


class Sieve(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True  # run users' active scripts at delivery
    max_script_size: Annotated[int, BeforeValidator(_size), Field(ge=1)] = 64 * 1024  # bytes per script
    max_scripts: int = Field(default=10, ge=1)  # scripts per account
    # RFC 5230 4.1: the period between two replies to one sender is at least this many days
    # (a script's :days below it is raised to it) and at most vacation_max_days.
    vacation_min_days: int = Field(default=1, ge=0)
    vacation_max_days: int = Field(default=30, ge=1)
    timezone: Annotated[str, BeforeValidator(_zone)] = "+0700"  # the zone of `date`/`currentdate` (Vietnam)
