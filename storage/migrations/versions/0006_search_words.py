"""Word-level search index beside the trigram one (SQLite).

Why: a trigram phrase over common words ("chuyen doi so") walks the positions of every trigram
in nearly every body (0.5 s on 100,000 messages). ``blob_words`` indexes the folded text's
space-separated words (the ``ascii`` tokenizer with every ASCII punctuation and control
character as a token character, so a token is exactly a space-separated word), and
``fts_rterms`` keeps every word reversed, so the words ending with a given text are a range
look-up. A multi-word IMAP substring "w1 w2 … wn" is then the phrase (a word ending with w1) w2 …
(a word starting with wn): exactly the substring semantics, from the index (storage/querysql.py).

Filled by the background indexer from ``fts_state.words_rowid`` (0 here: upgrading does no
bulk work; until the indexer has caught up, searches scan the rows it has not reached). The
delete trigger also keeps both watermarks at or below the largest rowid, so a rowid SQLite
reuses after deleting the newest row is never taken for indexed.

Revision ID: 0006_search_words
Revises: 0004_search
Create Date: 2026-12-06
"""

from alembic import op

revision = "0006_search_words"
down_revision = "0004_search"
branch_labels = None
depends_on = None

COLUMNS = ("subject", "from", "to", "cc", "bcc", "headers", "body")
# Token characters: every ASCII character but NUL, space and letters/digits (those are token
# characters anyway; non-ASCII bytes too). Folded text has no other whitespace (storage.mime.fold).
TOKEN_CHARS = "".join(chr(i) for i in range(1, 128) if not chr(i).isalnum() and chr(i) != " ")


def tokenizer() -> str:
    chars = TOKEN_CHARS.replace("'", "''").replace('"', '""')
    return f"\"ascii tokenchars '{chars}'\""


def _trigger(words: bool) -> str:
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    old = ", ".join(f'old."{c}"' for c in COLUMNS)
    body = (
        f"INSERT INTO blob_fts(blob_fts, rowid, {cols}) SELECT 'delete', old.rowid, {old} "
        f"WHERE old.rowid <= (SELECT last_rowid FROM fts_state); "
    )
    limit = "(SELECT coalesce(max(rowid), 0) FROM blob_meta)"
    if words:
        body += (
            f"INSERT INTO blob_words(blob_words, rowid, {cols}) SELECT 'delete', old.rowid, {old} "
            f"WHERE old.rowid <= (SELECT words_rowid FROM fts_state); "
            f"UPDATE fts_state SET last_rowid = min(last_rowid, {limit}), words_rowid = min(words_rowid, {limit}); "
        )
    else:
        body += f"UPDATE fts_state SET last_rowid = min(last_rowid, {limit}); "
    return f"CREATE TRIGGER blob_meta_ad AFTER DELETE ON blob_meta BEGIN {body}END"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    cols = ", ".join(f'"{c}"' for c in COLUMNS)
    op.execute(
        f"CREATE VIRTUAL TABLE blob_words USING fts5({cols}, content='blob_meta', content_rowid='rowid', "
        f"tokenize={tokenizer()})"
    )
    op.execute("CREATE TABLE fts_rterms (rterm TEXT PRIMARY KEY) WITHOUT ROWID")
    op.execute("ALTER TABLE fts_state ADD COLUMN words_rowid INTEGER NOT NULL DEFAULT 0")
    op.execute("DROP TRIGGER IF EXISTS blob_meta_ad")
    op.execute(_trigger(words=True))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS blob_meta_ad")
    op.execute("ALTER TABLE fts_state DROP COLUMN words_rowid")
    op.execute("DROP TABLE IF EXISTS fts_rterms")
    op.execute("DROP TABLE IF EXISTS blob_words")
    op.execute(_trigger(words=False))
