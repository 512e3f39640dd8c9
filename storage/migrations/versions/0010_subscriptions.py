"""subscriptions: an account's subscribed names, a list of their own (RFC 3501 §6.3.6-6.3.9)

Revision ID: 0010_subscriptions
Revises: 0001
Create Date: 2026-12-07

Own Alembic branch ("subscriptions"). A subscription was a flag on the folder row, so CREATE
subscribed, RENAME carried the subscription to the new name and DELETE dropped it. RFC 3501 and
RFC 5258 make the subscriptions a list of names: DELETE and RENAME do not change it, and a name
stays listed (\\NonExistent) after its folder is gone. Existing subscriptions are carried over;
``folders.subscribed`` stays (NOT NULL, still written) but is no longer read.
"""

from alembic import op
import sqlalchemy as sa

revision = "0010_subscriptions"
down_revision = "0001"
branch_labels = ("subscriptions",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_subscriptions_account_id_accounts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "name", name=op.f("pk_subscriptions")),
    )
    op.execute(
        "INSERT INTO subscriptions (account_id, name) "
        "SELECT account_id, name FROM folders WHERE subscribed = " + ("true" if op.get_bind().dialect.name == "postgresql" else "1")
    )


def downgrade() -> None:
    op.drop_table("subscriptions")
