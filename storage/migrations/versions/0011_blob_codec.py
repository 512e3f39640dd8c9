"""blob_codec: how each body is kept in ``blobs.data`` (NULL: as delivered; "zstd:N": N bytes of header section as delivered, then the rest zstd-compressed)

Revision ID: 0011_blob_codec
Revises: 0001
Create Date: 2026-12-07

Own Alembic branch ("blob_codec"). Bodies were the largest table: stored as delivered, a 10 KB
message took three 4 KB pages. They are now compressed with zstd, the header section left as it
is so header FETCHes need no decompression, when that saves at least an eighth (storage/codec.py). Bodies stored before keep NULL and are read as they are; nothing is
rewritten on upgrade (a store of 2 GB mailboxes would be locked for the duration).
"""

from alembic import op
import sqlalchemy as sa

revision = "0011_blob_codec"
down_revision = "0001"
branch_labels = ("blob_codec",)
depends_on = None


def upgrade() -> None:
    op.add_column("blobs", sa.Column("codec", sa.String(length=24), nullable=True))


def downgrade() -> None:
    # Compressed bodies would be unreadable by the older code: refuse rather than lose mail.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM blobs WHERE codec IS NOT NULL LIMIT 1")).first():
        raise RuntimeError("compressed bodies are stored; downgrading past 0011_blob_codec would make them unreadable")
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("codec")
