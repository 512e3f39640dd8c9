"""TLS-RPT: counts of outbound TLS sessions per day, domain, policy, MX host and result

Revision ID: smtpx_0015_tlsrpt
Revises: smtpx_0014_dsn
Create Date: 2026-12-07

On the "smtpx_dsn" branch, after the DSN columns (RFC 8460 daily reports, smtp/outbound/tlsrpt.py).
"""
from alembic import op
import sqlalchemy as sa


revision = "smtpx_0015_tlsrpt"
down_revision = "smtpx_0014_dsn"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tlsrpt_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("policy_type", sa.String(length=16), nullable=False),
        sa.Column("mx_host", sa.String(length=255), nullable=False),
        sa.Column("result", sa.String(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tlsrpt_counts")),
    )
    op.create_index("ix_tlsrpt_counts_key", "tlsrpt_counts", ["day", "domain", "policy_type", "mx_host", "result"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_tlsrpt_counts_key", table_name="tlsrpt_counts")
    op.drop_table("tlsrpt_counts")
