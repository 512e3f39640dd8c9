"""held_messages: messages held by the classified-document guard (R-SEC-3)

Revision ID: guard_0017_held
Revises: 0001
Create Date: 2026-12-07

Own Alembic branch ("guard_held"). Submission holds a stamped (or unreadable) message here when
``classified.action`` (or ``classified.unreadable``) is ``hold``; ``mailserver queue release``
delivers it, ``queue delete`` drops it. A new table, nothing to backfill.
"""

from alembic import op
import sqlalchemy as sa

revision = "guard_0017_held"
down_revision = "0001"
branch_labels = ("guard_held",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("blob_sha", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("local_ids", sa.Text(), nullable=False),
        sa.Column("remote", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("part", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("tx_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["blob_sha"], ["blobs.sha256"], name=op.f("fk_held_messages_blob_sha_blobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_messages")),
    )


def downgrade() -> None:
    op.drop_table("held_messages")
