"""Table ``account_lifecycle`` (migration 0007_lifecycle, branch "lifecycle"): why and when an
account's state last changed, the last re-activation, the leaving notice and date, and two
exemptions."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String, Table, false

from storage.models.core import Base

account_lifecycle = Table(
    "account_lifecycle",
    Base.metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("state", String(32), nullable=True),
    Column("state_changed_at", DateTime, nullable=True),
    Column("state_reason", String(255), nullable=True),
    Column("reactivated_at", DateTime, nullable=True),
    Column("notice_at", DateTime, nullable=True),
    Column("left_at", DateTime, nullable=True),
    Column("keep_after_leaving", Boolean, nullable=False, server_default=false()),
    Column("exempt_from_inactivity", Boolean, nullable=False, server_default=false()),
)
