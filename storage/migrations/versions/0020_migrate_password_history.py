"""password_history: earlier password hashes per account (passwords.history)

Revision ID: migrate_0020_password_history
Revises: 0001
Create Date: 2026-12-07

Own Alembic branch ("password_history"). A new table, nothing to backfill: history starts
with the next password change.
"""

from alembic import op
import sqlalchemy as sa

revision = "migrate_0020_password_history"
down_revision = "0001"
branch_labels = ("password_history",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "password_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("replaced_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_password_history_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_history")),
    )
    op.create_index("ix_password_history_account", "password_history", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_password_history_account", table_name="password_history")
    op.drop_table("password_history")
