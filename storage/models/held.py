"""Table ``held_messages`` (migration 0017_guard_held, branch "guard_held"): messages of our
users held by the classified-document guard (R-SEC-3) until an operator releases or deletes
them. The body is a blob of the store, as sent (trace headers and header hygiene applied); the
recipients are kept as they were resolved at submission."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Integer, String, Table, Text

from storage.models.core import Base

held_messages = Table(
    "held_messages",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("blob_sha", String(64), ForeignKey("blobs.sha256"), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sender", String(320), nullable=False),
    Column("account_id", Integer, nullable=True),  # the submitting account (the unit sent as, if any)
    Column("local_ids", Text, nullable=False),  # local recipients' account ids, space-separated
    Column("remote", Text, nullable=False),  # remote recipients, one per line
    Column("reason", String(16), nullable=False),  # stamped | unreadable
    Column("part", Text, nullable=False),  # where (subject, body, attachment "x.pdf")
    Column("detail", Text, nullable=False),  # the marking and line, or why it could not be read
    Column("tx_id", String(64), nullable=True),
    Column("created_at", DateTime, nullable=False),
)
