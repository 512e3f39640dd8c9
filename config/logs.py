"""``logging:``: level, format and destination of the server's log (mailserver/logsetup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Logging(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # text: "time LEVEL logger: message"; json: one object per line with stable field names
    # (time, level, logger, event, protocol, client, account, message_id, queue_id, message)
    format: Literal["text", "json"] = "text"
    file: Path | None = None  # null: stderr; a file is reopened on SIGHUP (logrotate)
