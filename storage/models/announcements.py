"""Table ``announcements`` (migration portal_0015_announcements, branch "portal_usage"): notices
scheduled with ``mailserver announce --at`` (R-OPS-3), delivered by the server when due."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, LargeBinary, String, Table

from storage.models.core import Base

announcements = Table(
    "announcements",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("due_at", DateTime, nullable=False, index=True),  # naive UTC
    Column("unit_code", String(64), nullable=True),  # None: every mailbox
    Column("subject", String(998), nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("state", String(16), nullable=False, server_default="pending"),  # pending, sending, sent
    Column("delivered", Integer, nullable=False, server_default="0"),
)
