"""sieve_scripts, sieve_forwards, sieve_vacation: per-account filters, forwarding, vacation replies sent

Revision ID: sieve_0014_scripts
Revises: 0001
Create Date: 2026-12-07

Own Alembic branch ("sieve"). New tables, nothing to backfill.
"""

from alembic import op
import sqlalchemy as sa

revision = "sieve_0014_scripts"
down_revision = "0001"
branch_labels = ("sieve",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sieve_scripts",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_sieve_scripts_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "name", name=op.f("pk_sieve_scripts")),
    )
    op.create_table(
        "sieve_forwards",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("keep", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_sieve_forwards_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_sieve_forwards")),
    )
    op.create_table(
        "sieve_vacation",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("handle", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_sieve_vacation_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "sender", "handle", name=op.f("pk_sieve_vacation")),
    )
    op.create_index("ix_sieve_vacation_sent_at", "sieve_vacation", ["sent_at"])


def downgrade() -> None:
    op.drop_index("ix_sieve_vacation_sent_at", table_name="sieve_vacation")
    op.drop_table("sieve_vacation")
    op.drop_table("sieve_forwards")
    op.drop_table("sieve_scripts")
