"""login_failures: failed logins per client address and per account name (R-SEC-1)

Revision ID: 0012_login_failures
Revises: 0001
Create Date: 2026-12-07

Own Alembic branch ("guard"). The login guard (mailserver/accounts/guard.py) counts failures
here so that every process of an installation shares them. A new table, nothing to backfill.
"""

from alembic import op
import sqlalchemy as sa

revision = "0012_login_failures"
down_revision = "0001"
branch_labels = ("guard",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_last_at", "login_failures", ["last_at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_last_at", table_name="login_failures")
    op.drop_table("login_failures")
