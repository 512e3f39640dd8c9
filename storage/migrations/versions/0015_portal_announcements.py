"""announcements: notices scheduled for later delivery (R-OPS-3)

Revision ID: portal_0015_announcements
Revises: portal_0014_usage_days
Create Date: 2026-12-07

On the "portal_usage" branch. A new table, nothing to backfill.
"""

from alembic import op
import sqlalchemy as sa

revision = "portal_0015_announcements"
down_revision = "portal_0014_usage_days"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("unit_code", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False, server_default="pending"),
        sa.Column("delivered", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
    )
    op.create_index(op.f("ix_announcements_due_at"), "announcements", ["due_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_announcements_due_at"), table_name="announcements")
    op.drop_table("announcements")
