"""Table ``login_failures`` (migration 0012_login_failures, branch "guard"): failed logins
counted per client address and per account name as typed (R-SEC-1, mailserver/policy/guard.py).
In the database so that every process of one installation (PostgreSQL, several ``serve``
workers) sees the same tallies; bounded and pruned by the guard, lost with nothing of value."""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table

from storage.models.core import Base

login_failures = Table(
    "login_failures",
    Base.metadata,
    Column("key", String(255), primary_key=True),  # "ip:<address or /64>" or "user:<name as typed>"
    Column("failures", Integer, nullable=False),
    Column("last_at", Float, nullable=False),  # epoch seconds of the last failure
    Index("ix_login_failures_last_at", "last_at"),
)
