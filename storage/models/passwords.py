"""Tables ``password_history`` and ``address_expiry`` (migration 0020_migrate_password_history, branch
"password_history"): the hashes an account had before, so a profile can refuse a new password
equal to one of the last N (``passwords.history``). Written in the transaction that changes the
password; deleted with the account. ``address_expiry``: when an old address kept as an alias by
``account rename`` stops reaching the account (``accounts.rename_alias_days``)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Table

from storage.models.core import Base

password_history = Table(
    "password_history",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("replaced_at", DateTime, nullable=False),  # when it stopped being the password (UTC)
    Index("ix_password_history_account", "account_id", "id"),
)

address_expiry = Table(
    "address_expiry",
    Base.metadata,
    Column("address", String(320), ForeignKey("addresses.address", ondelete="CASCADE"), primary_key=True),
    Column("expires_at", DateTime, nullable=False, index=True),  # UTC
)
