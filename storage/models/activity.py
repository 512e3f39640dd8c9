"""Table ``usage_days`` (migration 0014_portal_usage_days, branch "portal_usage"): per account
and local day, the counters reports need (R-OPS-1/2): logins by protocol, mailbox checks and the
hours they fell in, messages received and sent, bytes stored."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, ForeignKey, Index, Integer, Table

from storage.models.core import Base

usage_days = Table(
    "usage_days",
    Base.metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    *(Column(name, Integer, nullable=False, server_default="0")
      for name in ("login_imap", "login_pop3", "login_submission", "login_web", "checks", "check_hours", "received", "sent")),
    Column("bytes_stored", BigInteger, nullable=False, server_default="0"),
    Index("ix_usage_days_day", "day"),
)
