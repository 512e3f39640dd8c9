"""Table ``subscriptions`` (migration 0010_subscriptions, branch "subscriptions"): the names an
account is subscribed to (IMAP SUBSCRIBE / LSUB, RFC 3501 §6.3.6-6.3.9), a list of its own: a
name stays subscribed when its folder is deleted or renamed and may name no folder at all.
``folders.subscribed`` is no longer read."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table

from storage.models.core import Base

subscriptions = Table(
    "subscriptions",
    Base.metadata,
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(1024), primary_key=True),
)
