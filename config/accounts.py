"""Settings of account changes (``accounts:``): how long a renamed account's old address keeps
reaching it (``mailserver account rename``), so mail sent to the old address during the change
is not lost and correspondents have time to learn the new one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AccountChanges(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Days the old address stays an alias after `account rename` (`lifecycle run` removes it
    # then); null = kept until removed by hand; 0 = not kept.
    rename_alias_days: int | None = Field(default=180, ge=0)
