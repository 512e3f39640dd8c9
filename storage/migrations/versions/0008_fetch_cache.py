"""fetch_cache: a front end's wire renderings of a message's cached metadata

Revision ID: 0008_fetch_cache
Revises: 0001
Create Date: 2026-12-06

Own Alembic branch ("fetch_cache"). IMAP FETCH of ENVELOPE / BODY / BODYSTRUCTURE over a whole
folder spent its time turning the JSON cached at delivery into IMAP text, message by message.
The text is rendered once, on the first FETCH that needs it (never at delivery), and kept here:
one narrow row per message, found by the message's integer key (blob_meta's rows are wide and
keyed by a 64-character hash; joining them cost more than rendering). ``sha256`` and
``version`` make a stale row harmless: it is used only while it belongs to the same body and
the renderer's version, and is overwritten otherwise. Rows go with their message (CASCADE).
Only storage/sql/messages.py's read path uses it (plain SQL), through ``Store.fetch_rows`` and
``Store.put_rendered``.
"""
from alembic import op
import sqlalchemy as sa


revision = "0008_fetch_cache"
down_revision = "0001"
branch_labels = ("fetch_cache",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fetch_cache",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("bodystructure", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=op.f("fk_fetch_cache_message_id_messages"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_fetch_cache")),
    )


def downgrade() -> None:
    op.drop_table("fetch_cache")
