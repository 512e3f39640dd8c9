"""index on messages (folder_id, keywords): the keywords of a mailbox for FLAGS at SELECT

Why: RFC 3501 §6.3.1/§7.2.6 list every keyword in use in the mailbox in FLAGS and PERMANENTFLAGS.
The distinct keyword columns of a folder are read from this index; messages without keywords
(an empty column) fall outside the range ``keywords > ''`` and cost nothing.

Revision ID: 0010_keyword_index
Revises: 0001
Create Date: 2026-12-07

Own Alembic branch ("keywords"): ``mailserver db upgrade`` applies every head.
"""
from alembic import op


revision = "0010_keyword_index"
down_revision = "0001"
branch_labels = ("keywords",)
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_folder_keywords", "messages", ["folder_id", "keywords"])


def downgrade() -> None:
    op.drop_index("ix_messages_folder_keywords", table_name="messages")
