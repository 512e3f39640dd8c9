"""Substring search index over the folded search text (R-TEXT-1).

SQLite: an FTS5 table with the trigram tokenizer over ``blob_meta`` (external content); it
answers ``LIKE '%text%'`` — IMAP SEARCH's substring semantics — from the index. Rows are indexed
in bulk by a background job shortly after delivery (``fts_state.last_rowid`` marks how far), as
Dovecot's indexer does, so indexing never sits on the path to 250; searches scan the few rows
not indexed yet. PostgreSQL: pg_trgm GIN indexes on the same columns do the same for LIKE.

Revision ID: 0004_search
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op

revision = "0004_search"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("subject", "from", "to", "cc", "bcc", "headers", "body")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        old_cols = ", ".join(f'old."{c}"' for c in COLUMNS)
        op.execute(
            f"CREATE VIRTUAL TABLE blob_fts USING fts5({cols}, content='blob_meta', content_rowid='rowid', tokenize='trigram')"
        )
        op.execute("CREATE TABLE fts_state (id INTEGER PRIMARY KEY CHECK (id = 1), last_rowid INTEGER NOT NULL)")
        op.execute("INSERT INTO fts_state (id, last_rowid) VALUES (1, 0)")
        op.execute(
            f"CREATE TRIGGER blob_meta_ad AFTER DELETE ON blob_meta "
            f"WHEN old.rowid <= (SELECT last_rowid FROM fts_state) BEGIN "
            f"INSERT INTO blob_fts(blob_fts, rowid, {cols}) VALUES ('delete', old.rowid, {old_cols}); END"
        )
    elif bind.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for column in COLUMNS:
            op.execute(f'CREATE INDEX ix_blob_meta_trgm_{column} ON blob_meta USING gin ("{column}" gin_trgm_ops)')


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS fts_state")
        op.execute("DROP TRIGGER IF EXISTS blob_meta_ad")
        op.execute("DROP TABLE IF EXISTS blob_fts")
    elif bind.dialect.name == "postgresql":
        for column in COLUMNS:
            op.execute(f"DROP INDEX IF EXISTS ix_blob_meta_trgm_{column}")
