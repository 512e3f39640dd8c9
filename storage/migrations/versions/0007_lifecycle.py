"""lifecycle (R-LIFE-1..5, R-PASS-1/3): the facts the account lifecycle job needs

Revision ID: 0007_lifecycle
Revises: 0001
Create Date: 2026-12-06

Own Alembic branch ("lifecycle"): ``mailserver db upgrade`` applies every head. Creation, last
login and password age are in ``accounts`` (0001); this table holds what only the lifecycle adds,
one row per account that has any of it. Only storage/sql/lifecycle.py uses it.
"""
from alembic import op
import sqlalchemy as sa


revision = "0007_lifecycle"
down_revision = "0001"
branch_labels = ("lifecycle",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_lifecycle",
        sa.Column("account_id", sa.Integer(), nullable=False),
        # The state the two columns after it describe; stale once accounts.state differs.
        sa.Column("state", sa.String(length=32), nullable=True),
        sa.Column("state_changed_at", sa.DateTime(), nullable=True),
        sa.Column("state_reason", sa.String(length=255), nullable=True),
        # Last operator unlock or re-issue: restarts the inactivity clock (R-LIFE-3/4).
        sa.Column("reactivated_at", sa.DateTime(), nullable=True),
        # Written notice of leaving, transfer or violation (R-LIFE-2/4), and the leaving date.
        sa.Column("notice_at", sa.DateTime(), nullable=True),
        sa.Column("left_at", sa.DateTime(), nullable=True),
        sa.Column("keep_after_leaving", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("exempt_from_inactivity", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_account_lifecycle_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_lifecycle")),
    )


def downgrade() -> None:
    op.drop_table("account_lifecycle")
