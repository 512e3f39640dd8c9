"""SQLAlchemy tables of the mail store. Internal to storage/: front ends never see these rows.

Layout decisions (docs/architecture.md, "Storage"):
- One body, many message rows: ``blobs`` holds each distinct body once (SHA-256), ``messages``
  point at it, so a group fan-out writes one blob and N small rows (R-BOX-4).
- Metadata parsed at delivery lives in ``blob_meta`` (per body, not per copy). Its short search
  columns come before the long ones so a LIKE scan does not walk overflow pages of the JSON.
- ``messages.modseq`` and ``expunged`` form the change log that IDLE, other sessions and
  CONDSTORE/QRESYNC read.
"""

from __future__ import annotations

import datetime as _dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Domain(Base):
    __tablename__ = "domains"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime)
    password_changed_at: Mapped[_dt.datetime | None] = mapped_column(DateTime)
    last_login_at: Mapped[_dt.datetime | None] = mapped_column(DateTime)
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    used_messages: Mapped[int] = mapped_column(Integer, default=0)
    # Last UIDVALIDITY handed out to a folder of this account; never reused (RFC 3501 2.3.1.1).
    last_uidvalidity: Mapped[int] = mapped_column(BigInteger, default=0)


class Address(Base):
    """Every address that reaches an account (its primary one included); units may have several."""

    __tablename__ = "addresses"
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)


class Folder(Base):
    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(1024))
    special_use: Mapped[str | None] = mapped_column(String(32))
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uidnext: Mapped[int] = mapped_column(BigInteger, default=1)
    highestmodseq: Mapped[int] = mapped_column(BigInteger, default=1)
    # Messages with uid >= recent_floor are \Recent for the next read-write SELECT (RFC 3501).
    recent_floor: Mapped[int] = mapped_column(BigInteger, default=1)


class Blob(Base):
    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)  # None: kept as a file (SQLite, large)
    codec: Mapped[str | None] = mapped_column(String(24))  # None: data as delivered; see storage/codec.py
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime)


class BlobMeta(Base):
    __tablename__ = "blob_meta"
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256", ondelete="CASCADE"), primary_key=True)
    sent_date: Mapped[_dt.datetime | None] = mapped_column(DateTime)  # UTC, for SORT DATE
    # The Date: header's day in its own zone, for SENTBEFORE/SENTON/SENTSINCE (RFC 3501 §6.4.4);
    # 1970-01-01 without a readable Date: (storage/indexing.py sent_day).
    sent_day: Mapped[_dt.date | None] = mapped_column(Date, index=True)
    sort_subject: Mapped[str] = mapped_column(String(255), default="")
    # THREAD=REFERENCES parents (storage/indexing.py thread_refs); NULL for bodies stored before
    # the column, whose header is read (and this filled) at their first THREAD.
    thread_refs: Mapped[str | None] = mapped_column(Text)
    sort_from: Mapped[str] = mapped_column(String(255), default="")
    sort_to: Mapped[str] = mapped_column(String(255), default="")
    sort_cc: Mapped[str] = mapped_column(String(255), default="")
    # RFC 5957 SORT=DISPLAY keys (storage/indexing.py display_address)
    sort_display_from: Mapped[str] = mapped_column(String(255), default="")
    sort_display_to: Mapped[str] = mapped_column(String(255), default="")
    # Folded search text (NFC, case-folded, tones removed when configured; R-TEXT-1).
    subject: Mapped[str] = mapped_column(Text, default="")
    from_: Mapped[str] = mapped_column("from", Text, default="")
    to: Mapped[str] = mapped_column(Text, default="")
    cc: Mapped[str] = mapped_column(Text, default="")
    bcc: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(Text, default="")
    envelope: Mapped[str] = mapped_column(Text)  # JSON
    structure: Mapped[str] = mapped_column(Text)  # JSON
    headers: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("folder_id", "uid"),
        Index("ix_messages_folder_modseq", "folder_id", "modseq"),
        # The keywords a folder's messages carry, for FLAGS at SELECT (storage/sql/messages.py).
        Index("ix_messages_folder_keywords", "folder_id", "keywords"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    uid: Mapped[int] = mapped_column(BigInteger)
    modseq: Mapped[int] = mapped_column(BigInteger)
    blob_sha: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    internaldate: Mapped[_dt.datetime] = mapped_column(DateTime)
    # When the row was added to its folder (RFC 8514 SAVEDATE): delivery, APPEND, COPY, MOVE.
    # NULL for rows older than the column (FETCH SAVEDATE answers NIL for them).
    savedate: Mapped[_dt.datetime | None] = mapped_column(DateTime)
    flags: Mapped[int] = mapped_column(Integer, default=0)  # bit mask of SYSTEM_FLAGS
    keywords: Mapped[str] = mapped_column(Text, default="")  # " kw1 kw2 " (padded for LIKE)


class Expunged(Base):
    __tablename__ = "expunged"
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"), primary_key=True)
    uid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    modseq: Mapped[int] = mapped_column(BigInteger)
