"""Table ``quota_state`` (migration 0005_quota, branch "quota"): the account's quota class and
the highest warning threshold already sent."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table

from storage.models.core import Base

quota_state = Table(
    "quota_state",
    Base.metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("class_name", String(64), nullable=True),
    Column("notified_percent", Integer, nullable=False, server_default="0"),
)
