"""MTA-STS: destinations' policies kept across restarts until they expire (RFC 8461 5.1)

Revision ID: smtpx_0016_mta_sts
Revises: smtpx_0015_tlsrpt
Create Date: 2026-12-08

On the "smtpx_dsn" branch (smtp/outbound/mtasts.py).
"""
from alembic import op
import sqlalchemy as sa


revision = "smtpx_0016_mta_sts"
down_revision = "smtpx_0015_tlsrpt"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mta_sts_policies",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("policy_id", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("mx", sa.Text(), nullable=False),
        sa.Column("max_age", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_mta_sts_policies")),
    )


def downgrade() -> None:
    op.drop_table("mta_sts_policies")
