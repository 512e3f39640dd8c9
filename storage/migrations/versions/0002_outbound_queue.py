"""outbound queue: messages waiting for remote delivery and their recipients

Revision ID: 0002_outbound
Revises: 0001
Create Date: 2026-11-23

Own Alembic branch ("outbound"): ``mailserver db upgrade`` applies every head.
"""
from alembic import op
import sqlalchemy as sa


revision = "0002_outbound"
down_revision = "0001"
branch_labels = ("outbound",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("blob_sha", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("tx_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["blob_sha"], ["blobs.sha256"], name=op.f("fk_outbound_messages_blob_sha_blobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_messages")),
    )
    op.create_table(
        "outbound_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_code", sa.Integer(), nullable=True),
        sa.Column("last_reply", sa.Text(), nullable=True),
        sa.Column("remote", sa.String(length=255), nullable=True),
        sa.Column("warned", sa.Boolean(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("locked_by", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["outbound_messages.id"], ondelete="CASCADE",
            name=op.f("fk_outbound_recipients_message_id_outbound_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_recipients")),
    )
    op.create_index("ix_outbound_recipients_due", "outbound_recipients", ["state", "next_attempt_at"])
    op.create_index("ix_outbound_recipients_message_id", "outbound_recipients", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_outbound_recipients_message_id", table_name="outbound_recipients")
    op.drop_index("ix_outbound_recipients_due", table_name="outbound_recipients")
    op.drop_table("outbound_recipients")
    op.drop_table("outbound_messages")
