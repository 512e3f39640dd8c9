"""The storage API implemented on SQLAlchemy for SQLite and PostgreSQL (storage/sql/store.py
composes it). Only the composition root (mailserver/) and the tests build it; front ends see
storage.api."""

from storage.sql.store import SqlStore

__all__ = ["SqlStore"]
