"""Tables of the outbound queue (migration 0002_outbound): one ``outbound_messages`` row per
queued message (its body a blob of the store) and one ``outbound_recipients`` row per remote
recipient with its own state and retry schedule."""

from __future__ import annotations

import datetime as _dt

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.core import Base


class OutboundMessage(Base):
    __tablename__ = "outbound_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    blob_sha: Mapped[str] = mapped_column(String(64), ForeignKey("blobs.sha256"))
    sender: Mapped[str] = mapped_column(String(320))  # "" = null reverse-path
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime)
    tx_id: Mapped[str | None] = mapped_column(String(64))
    # migration 0014_smtpx_dsn: RFC 3461 RET/ENVID and RFC 8689 REQUIRETLS of the transaction
    dsn_ret: Mapped[str | None] = mapped_column(String(4))
    dsn_envid: Mapped[str | None] = mapped_column(String(100))
    requiretls: Mapped[bool | None] = mapped_column(Boolean)


class OutboundRecipient(Base):
    __tablename__ = "outbound_recipients"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(Integer, ForeignKey("outbound_messages.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320))
    domain: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[_dt.datetime] = mapped_column(DateTime)
    last_attempt_at: Mapped[_dt.datetime | None] = mapped_column(DateTime)
    last_code: Mapped[int | None] = mapped_column(Integer)
    last_reply: Mapped[str | None] = mapped_column(Text)
    remote: Mapped[str | None] = mapped_column(String(255))
    warned: Mapped[bool] = mapped_column(Boolean)  # the "delayed" DSN was sent
    locked_until: Mapped[_dt.datetime | None] = mapped_column(DateTime)
    locked_by: Mapped[str | None] = mapped_column(String(128))
    # migration 0014_smtpx_dsn: RFC 3461 NOTIFY and ORCPT of the RCPT
    dsn_notify: Mapped[str | None] = mapped_column(String(32))
    dsn_orcpt: Mapped[str | None] = mapped_column(String(500))


class TlsReportCount(Base):
    """TLS-RPT (RFC 8460): outbound sessions counted per UTC day, policy domain, policy type, MX
    host and result ("success" or an RFC 8460 4.3 failure type); migration smtpx_0015_tlsrpt.
    Rows of a day are deleted once its reports went out."""

    __tablename__ = "tlsrpt_counts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD (UTC)
    domain: Mapped[str] = mapped_column(String(255))
    policy_type: Mapped[str] = mapped_column(String(16))  # sts, tlsa, no-policy-found
    mx_host: Mapped[str] = mapped_column(String(255))
    result: Mapped[str] = mapped_column(String(40))
    count: Mapped[int] = mapped_column(Integer)
