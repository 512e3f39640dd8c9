"""Tables of the organisation model: units, delegations, groups, profiles, audit.

They live on the ``org`` Alembic branch (storage/migrations/versions/0003_organisation.py) and on
the same ``Base`` as storage/models/core.py so foreign keys to ``accounts`` resolve. Only storage/sql/org.py
reads or writes them.

- ``org_units``: the unit tree (R-BOX-2). The unit mailbox is an account of kind "unit"; its head
  is a personal account. Removing the unit account removes the unit row.
- ``org_delegations``: the head's written delegation of the unit mailbox to staff, with rights.
- ``org_groups`` / ``org_group_members``: group mailboxes (R-BOX-4) and their members, which may
  be any account, groups included (expanded at delivery, loops refused when a member is added).
- ``account_profile``: what the registration form says about a person (unit, title, phones).
- ``org_audit``: who did what to which mailbox, when. No foreign keys: the record outlives the
  accounts it names, so the addresses are copied into it.
"""

from __future__ import annotations

import datetime as _dt

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.core import Base


class OrgUnit(Base):
    __tablename__ = "org_units"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # stored lower-case
    name: Mapped[str] = mapped_column(String(255))  # NFC (R-TEXT-1)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="SET NULL"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), unique=True)
    head_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[_dt.datetime] = mapped_column(DateTime)


class OrgDelegation(Base):
    __tablename__ = "org_delegations"
    unit_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    delegate_account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    rights: Mapped[str] = mapped_column(String(64))  # "read,send-as" (sorted, comma-joined)
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    granted_at: Mapped[_dt.datetime] = mapped_column(DateTime)


class OrgGroup(Base):
    __tablename__ = "org_groups"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    send_policy: Mapped[str] = mapped_column(String(16))


class OrgGroupMember(Base):
    __tablename__ = "org_group_members"
    group_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    member_account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class AccountProfile(Base):
    __tablename__ = "account_profile"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    mobile: Mapped[str] = mapped_column(String(32), default="")
    # Folded name | unit | phone: how the import recognises a person registered twice.
    person_key: Mapped[str] = mapped_column(String(512), index=True)


class OrgAudit(Base):
    __tablename__ = "org_audit"
    __table_args__ = (Index("ix_org_audit_mailbox_at", "mailbox_account_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[_dt.datetime] = mapped_column(DateTime)
    actor_account_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(320))  # address, or "operator"
    mailbox_account_id: Mapped[int | None] = mapped_column(Integer)
    mailbox: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
