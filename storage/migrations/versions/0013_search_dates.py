"""search dates: blob_meta.sent_day (SENT* by the Date: header's own day), recomputed SORT keys,
messages.savedate (RFC 8514 SAVEDATE)

Revision ID: 0013_search_dates
Revises: 0001
Create Date: 2026-12-07

Own Alembic branch ("search_dates").
- ``blob_meta.sent_day``: SENTBEFORE/SENTON/SENTSINCE compare the day of the Date: header
  "disregarding time and timezone" (RFC 3501 §6.4.4); ``sent_date`` is UTC and files a message
  sent at 00:30 +0700 under the day before. Backfilled from the Date: kept in the ENVELOPE JSON.
- ``sort_subject`` / ``sort_from`` / ``sort_to`` / ``sort_cc`` recomputed from the ENVELOPE: the
  RFC 5256 §2.1 base subject and the i;ascii-casemap key (only ASCII letters fold; before, the
  search folding also dropped Vietnamese tones and Python lower() folded every letter).
- ``blob_meta.sort_display_from`` / ``sort_display_to``: RFC 5957 SORT=DISPLAY keys, backfilled.
- ``blob_meta.thread_refs``: THREAD=REFERENCES parents (RFC 5256 §3); NULL for stored bodies
  (the References header is not kept outside the body), filled at their first THREAD.
- ``messages.savedate``: when the row was added to its folder; NULL for older rows (FETCH
  SAVEDATE is NIL for them, RFC 8514 §3; the SAVED* search keys use INTERNALDATE instead).
"""

import json

from alembic import op
import sqlalchemy as sa

from storage.indexing import ascii_casemap, base_subject, display_address, sent_day

revision = "0013_search_dates"
down_revision = "0001"
branch_labels = ("search_dates",)
depends_on = None

_BATCH = 1000


def _first_mailbox(addresses) -> str:
    for addr in addresses or []:
        if addr.get("mailbox") and addr.get("host") is not None:
            return ascii_casemap(addr["mailbox"])
    return ""


def _subject(raw: str | None) -> str:
    from storage.mime.headers import decode_header

    return decode_header(raw).strip() if raw else ""


def upgrade() -> None:
    op.add_column("blob_meta", sa.Column("sent_day", sa.Date(), nullable=True))
    op.create_index(op.f("ix_blob_meta_sent_day"), "blob_meta", ["sent_day"])
    op.add_column("blob_meta", sa.Column("thread_refs", sa.Text(), nullable=True))
    op.add_column("blob_meta", sa.Column("sort_display_from", sa.String(255), nullable=False, server_default=""))
    op.add_column("blob_meta", sa.Column("sort_display_to", sa.String(255), nullable=False, server_default=""))
    op.add_column("messages", sa.Column("savedate", sa.DateTime(), nullable=True))
    conn = op.get_bind()
    meta = sa.table(
        "blob_meta", sa.column("sha256", sa.String), sa.column("envelope", sa.Text), sa.column("sent_day", sa.Date),
        sa.column("sort_subject", sa.String), sa.column("sort_from", sa.String), sa.column("sort_to", sa.String),
        sa.column("sort_cc", sa.String), sa.column("sort_display_from", sa.String),
        sa.column("sort_display_to", sa.String),
    )  # fmt: skip
    update = (
        meta.update()
        .where(meta.c.sha256 == sa.bindparam("key"))
        .values(
            sent_day=sa.bindparam("day"), sort_subject=sa.bindparam("subject"), sort_from=sa.bindparam("from_"),
            sort_to=sa.bindparam("to"), sort_cc=sa.bindparam("cc"), sort_display_from=sa.bindparam("dfrom"),
            sort_display_to=sa.bindparam("dto"),
        )  # fmt: skip
    )
    last = ""
    while True:
        rows = conn.execute(
            sa.select(meta.c.sha256, meta.c.envelope).where(meta.c.sha256 > last).order_by(meta.c.sha256).limit(_BATCH)
        ).all()
        if not rows:
            break
        values = []
        for sha, text in rows:
            try:
                env = json.loads(text or "{}")
            except ValueError:
                env = {}
            values.append({
                "key": sha, "day": sent_day(env.get("date")),
                "subject": ascii_casemap(base_subject(_subject(env.get("subject"))))[:255],
                "from_": _first_mailbox(env.get("from"))[:255], "to": _first_mailbox(env.get("to"))[:255],
                "cc": _first_mailbox(env.get("cc"))[:255], "dfrom": display_address(env.get("from"))[:255],
                "dto": display_address(env.get("to"))[:255],
            })  # fmt: skip
        conn.execute(update, values)
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_column("messages", "savedate")
    op.drop_column("blob_meta", "thread_refs")
    op.drop_column("blob_meta", "sort_display_from")
    op.drop_column("blob_meta", "sort_display_to")
    op.drop_index(op.f("ix_blob_meta_sent_day"), "blob_meta")
    op.drop_column("blob_meta", "sent_day")
