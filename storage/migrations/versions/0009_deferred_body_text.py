"""Search text of bodies and header fields extracted after delivery (SQLite)

Why: decoding a message's text parts and header fields and folding them for search (R-TEXT-1)
was a third of the CPU the single event loop spent per delivered message. On SQLite the store
now leaves ``blob_meta.body`` and ``headers`` empty at delivery and the background indexer
fills them, in quiet moments or when much waits, before it adds the rows to the FTS5 indexes; a
SEARCH that needs that text first fills whatever is still waiting, so answers stay exact
(storage/sql/search.py). Subject, addresses, Message-ID, dates and sort keys, which have columns
of their own, are still filled at delivery.
``fts_state.body_rowid`` marks how far bodies are filled. Every body stored before this
revision was filled at delivery, so the mark starts at the newest row. The delete trigger keeps
it at or below the largest rowid, like the index marks, so a rowid SQLite reuses after deleting
the newest row is never taken for filled. PostgreSQL still fills the column at delivery (its
pg_trgm indexes follow every write): nothing changes there.

Revision ID: 0009_deferred_body_text
Revises: 0006_search_words
Create Date: 2026-12-07
"""

from alembic import op

revision = "0009_deferred_body_text"
down_revision = "0006_search_words"
branch_labels = None
depends_on = None

COLUMNS = ("subject", "from", "to", "cc", "bcc", "headers", "body")


def _trigger(with_body: bool) -> str:
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    old = ", ".join(f'old."{c}"' for c in COLUMNS)
    limit = "(SELECT coalesce(max(rowid), 0) FROM blob_meta)"
    marks = f"last_rowid = min(last_rowid, {limit}), words_rowid = min(words_rowid, {limit})"
    if with_body:
        marks += f", body_rowid = min(body_rowid, {limit})"
    return (
        "CREATE TRIGGER blob_meta_ad AFTER DELETE ON blob_meta BEGIN "
        f"INSERT INTO blob_fts(blob_fts, rowid, {cols}) SELECT 'delete', old.rowid, {old} "
        "WHERE old.rowid <= (SELECT last_rowid FROM fts_state); "
        f"INSERT INTO blob_words(blob_words, rowid, {cols}) SELECT 'delete', old.rowid, {old} "
        "WHERE old.rowid <= (SELECT words_rowid FROM fts_state); "
        f"UPDATE fts_state SET {marks}; END"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("ALTER TABLE fts_state ADD COLUMN body_rowid INTEGER NOT NULL DEFAULT 0")
    op.execute("UPDATE fts_state SET body_rowid = (SELECT coalesce(max(rowid), 0) FROM blob_meta)")
    op.execute("DROP TRIGGER IF EXISTS blob_meta_ad")
    op.execute(_trigger(with_body=True))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS blob_meta_ad")
    op.execute(_trigger(with_body=False))
    op.execute("ALTER TABLE fts_state DROP COLUMN body_rowid")
