"""usage_days: per account and day, the counters of the reports (R-OPS-1/2)

Revision ID: portal_0014_usage_days
Revises: 0001
Create Date: 2026-12-07

Own Alembic branch ("portal_usage"). Written in batches by storage/sql/usage_days.py. A new
table, nothing to backfill.
"""

from alembic import op
import sqlalchemy as sa

revision = "portal_0014_usage_days"
down_revision = "0001"
branch_labels = ("portal_usage",)
depends_on = None

_COUNTERS = ("login_imap", "login_pop3", "login_submission", "login_web", "checks", "check_hours", "received", "sent")


def upgrade() -> None:
    op.create_table(
        "usage_days",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in _COUNTERS),
        sa.Column("bytes_stored", sa.BigInteger(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_usage_days_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "day", name=op.f("pk_usage_days")),
    )
    op.create_index("ix_usage_days_day", "usage_days", ["day"])


def downgrade() -> None:
    op.drop_index("ix_usage_days_day", table_name="usage_days")
    op.drop_table("usage_days")
