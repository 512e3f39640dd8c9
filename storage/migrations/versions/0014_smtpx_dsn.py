"""outbound queue: RFC 3461 DSN parameters and RFC 8689 REQUIRETLS kept with queued mail

Revision ID: smtpx_0014_dsn
Revises: 0002_outbound (whose tables it extends)
Create Date: 2026-12-07

Own Alembic branch ("smtpx_dsn"), off 0002_outbound rather than 0001: its columns need the
queue tables first (a ``depends_on`` would leave 0002_outbound listed as a head that the database
never reports, and ``serve`` would refuse to start). All columns are nullable: rows queued before this revision
behave as if the client gave no DSN parameter and no REQUIRETLS.
"""
from alembic import op
import sqlalchemy as sa


revision = "smtpx_0014_dsn"
down_revision = "0002_outbound"
branch_labels = ("smtpx_dsn",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("dsn_ret", sa.String(length=4), nullable=True))
        batch.add_column(sa.Column("dsn_envid", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("requiretls", sa.Boolean(), nullable=True))
    with op.batch_alter_table("outbound_recipients") as batch:
        batch.add_column(sa.Column("dsn_notify", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("dsn_orcpt", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_recipients") as batch:
        batch.drop_column("dsn_orcpt")
        batch.drop_column("dsn_notify")
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("requiretls")
        batch.drop_column("dsn_envid")
        batch.drop_column("dsn_ret")
