"""Setting values as an inspector reads them: ``2 GiB``, ``off``, ``02:30``, a rule list."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from config.sizes import format_limit

SIZE_KEYS = frozenset({"quota.mailbox", "quota.attachment"})


def show(key: str, value: Any) -> str:
    """One setting's value in a line (``key`` tells sizes apart from plain numbers)."""
    if key in SIZE_KEYS:
        return format_limit(value)
    if value is None:
        return "off" if key.startswith("filters.") or key.endswith("run_at") else "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if key.startswith("listeners."):
        return f"{value.address}:{value.port}"
    if key == "retention.rules":
        return ", ".join(f"{r.folder} > {r.older_than}" for r in value) or "none"
    if isinstance(value, BaseModel):
        fields = value.model_dump(exclude_none=True)
        return "on" if fields.get("enabled", True) and fields else "off"
    if isinstance(value, (tuple, list)):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
    return str(value)
