"""Tables of the Sieve filters (migration 0014_sieve_scripts, branch "sieve"): each account's
scripts (RFC 5228, managed over ManageSieve RFC 5804 and the portal), at most one active; and
the forwarding of personal accounts (with or without a local copy); and
the vacation replies sent (RFC 5230: one reply per sender and handle per period), shared by
every process of an installation."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Float, ForeignKey, Index, Integer, String, Table, Text

from storage.models.core import Base

sieve_scripts = Table(
    "sieve_scripts",
    Base.metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(255), primary_key=True),  # NFC, as the client gave it
    Column("content", Text, nullable=False),  # UTF-8 text (RFC 5228 scripts are UTF-8)
    Column("active", Boolean, nullable=False, default=False),
    Column("updated_at", DateTime, nullable=False),
)

sieve_forwards = Table(
    "sieve_forwards",
    Base.metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("targets", Text, nullable=False),  # addresses, one per line
    Column("keep", Boolean, nullable=False),  # a local copy too
    Column("updated_at", DateTime, nullable=False),
)

sieve_vacation = Table(
    "sieve_vacation",
    Base.metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("sender", String(320), primary_key=True),  # the envelope sender replied to, lower case
    Column("handle", String(64), primary_key=True),  # RFC 5230 4.2 :handle, or a digest of the reply
    Column("sent_at", Float, nullable=False),  # epoch seconds
    Index("ix_sieve_vacation_sent_at", "sent_at"),
)
