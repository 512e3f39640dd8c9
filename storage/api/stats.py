"""Figures about the whole store for the operator's monitoring (the portal's ``/metrics``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoreStats:
    accounts: dict[tuple[str, str], int]  # (kind, state) → count
    used_bytes: int  # every mailbox's quota usage together
    messages: int
    stored_bodies: int  # distinct bodies (single-instance storage: fewer than messages)
    outbound: dict[str, int]  # outbound recipients by state (queued, deferred, ...)
    index_backlog: int  # bodies the SQLite search index has not reached yet (0 on PostgreSQL)
