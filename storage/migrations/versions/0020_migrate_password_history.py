"""password_history: earlier password hashes per account (passwords.history); address_expiry:
old addresses kept as aliases by `account rename` until a date

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
    op.create_table(
        "address_expiry",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["address"], ["addresses.address"], name=op.f("fk_address_expiry_address_addresses"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_address_expiry")),
    )
    op.create_index(op.f("ix_address_expiry_expires_at"), "address_expiry", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_address_expiry_expires_at"), table_name="address_expiry")
    op.drop_table("address_expiry")
    op.drop_index("ix_password_history_account", table_name="password_history")
    op.drop_table("password_history")
