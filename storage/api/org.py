"""Value types and pure helpers of the organisation model (R-BOX-2/3/4, R-ACC-1, R-DIR-1):
rights, units, delegations, groups, profiles, audit entries. The role is ``Organisation``
(storage/api/roles.py); its implementation is storage/sql/org.py."""

from __future__ import annotations

import datetime as _dt
import enum
from dataclasses import dataclass
from typing import Iterable

from storage.api import types as api
from storage.errors import Invalid
from storage.mime import fold

#: Name of the IMAP shared namespace holding unit mailboxes (RFC 2342), e.g. "Đơn vị/Văn phòng".
SHARED_PREFIX = "Đơn vị"
OPERATOR = "operator"


class Right(enum.StrEnum):
    READ = "read"  # SELECT/EXAMINE, FETCH, SEARCH; also needed to log in through authzid
    WRITE_FLAGS = "write-flags"  # STORE of flags other than \Deleted
    DELETE = "delete"  # STORE \Deleted, EXPUNGE, MOVE out
    SEND_AS = "send-as"  # submission with the unit address as sender


ALL_RIGHTS = frozenset(Right)


class SendPolicy(enum.StrEnum):
    """Who may send to a group (R-BOX-4 setting)."""

    ANYONE = "anyone"
    DOMAINS = "domains"  # senders in the agency's own (local) domains
    MEMBERS = "members"  # senders who are members after expansion


def parse_rights(text: str | Iterable[str]) -> frozenset[Right]:
    """"read,send-as" (or an iterable of names; "all" for every right) → rights; Invalid else."""
    items = text.replace(" ", ",").split(",") if isinstance(text, str) else list(text)
    rights: set[Right] = set()
    for item in (i.strip().lower() for i in items):
        if not item:
            continue
        if item == "all":
            rights |= ALL_RIGHTS
            continue
        try:
            rights.add(Right(item))
        except ValueError:
            known = ", ".join(r.value for r in Right)
            raise Invalid(f"unknown right {item!r}; known: {known}, all") from None
    if not rights:
        raise Invalid("no rights given")
    return frozenset(rights)


def format_rights(rights: Iterable[Right]) -> str:
    return ",".join(r.value for r in Right if r in set(rights))


@dataclass(frozen=True, slots=True)
class Unit:
    id: int
    code: str
    name: str
    parent_id: int | None
    account: api.Account  # the unit mailbox
    addresses: tuple[str, ...]  # primary first
    head: api.Account | None
    path: tuple[str, ...]  # names from the root unit down to this one

    @property
    def shared_name(self) -> str:
        """The folder prefix delegates see: "Đơn vị/Bộ KH&CN/Văn phòng" (no "/" inside names)."""
        return "/".join((SHARED_PREFIX, *(n.replace("/", "-") for n in self.path)))


@dataclass(frozen=True, slots=True)
class Delegation:
    unit_account_id: int
    delegate: api.Account
    rights: frozenset[Right]
    granted_by: int | None  # None: the operator, on the head's written request
    granted_at: _dt.datetime


@dataclass(frozen=True, slots=True)
class SharedMailbox:
    account: api.Account  # the unit mailbox; its folders are store.list_folders(account.id)
    path: str  # Unit.shared_name
    rights: frozenset[Right]


@dataclass(frozen=True, slots=True)
class Group:
    account: api.Account
    send_policy: SendPolicy
    members: tuple[api.Account, ...]  # direct members, by address


@dataclass(frozen=True, slots=True)
class Profile:
    account_id: int
    unit_id: int | None
    title: str
    phone: str
    mobile: str


@dataclass(frozen=True, slots=True)
class NewPerson:
    """One account to create in ``Organisation.create_people`` (bulk provisioning)."""

    address: str
    display_name: str
    password_hash: str
    unit_id: int | None
    title: str = ""
    phone: str = ""
    mobile: str = ""
    state: api.AccountState = api.AccountState.MUST_CHANGE_PASSWORD  # R-PASS-1 for a person


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: _dt.datetime
    actor: str
    actor_account_id: int | None
    mailbox: str
    mailbox_account_id: int | None
    action: str
    detail: str


@dataclass(frozen=True, slots=True)
class DirectoryRow:
    account: api.Account
    addresses: tuple[str, ...]  # primary first
    unit_path: tuple[str, ...]  # the unit itself for a unit mailbox, the person's unit otherwise
    title: str
    phone: str


def person_key(name: str, unit_id: int | None, phone: str) -> str:
    """How a person registered twice is recognised: same folded name, same unit, same phone.

    Two namesakes in one unit stay possible (the address rules number them, R-ADDR-1/2) as long
    as the form gives them different phone numbers."""
    return f"{fold(' '.join(name.split()))}|{unit_id or ''}|{phone}"
