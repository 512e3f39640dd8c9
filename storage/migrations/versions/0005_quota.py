"""quota: per-account quota class and last warning threshold sent

Revision ID: 0005_quota
Revises: 0001
Create Date: 2026-11-23

Own Alembic branch ("quota"): ``mailserver db upgrade`` applies every head. Usage itself
(``accounts.used_bytes`` / ``used_messages``) and the per-account override (``accounts.quota_bytes``)
are in 0001; this table only holds what the quota service adds. Only storage/sql/usage.py uses it.
"""
from alembic import op
import sqlalchemy as sa


revision = "0005_quota"
down_revision = "0001"
branch_labels = ("quota",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quota_state",
        sa.Column("account_id", sa.Integer(), nullable=False),
        # Name of a `quota.classes` entry; on a unit mailbox it also applies to the unit's staff.
        sa.Column("class_name", sa.String(length=64), nullable=True),
        # Highest warning threshold (percent) already sent; 0 = none. Lowered when usage drops.
        sa.Column("notified_percent", sa.Integer(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_quota_state_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_quota_state")),
    )


def downgrade() -> None:
    op.drop_table("quota_state")
