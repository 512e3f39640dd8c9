"""Value types of the mail store: accounts, folders, messages, deliveries (see storage/api/__init__.py).

Frozen dataclasses in and out, never ORM rows.
"""

from __future__ import annotations

import datetime as _dt
import enum
from dataclasses import dataclass, field
from typing import Sequence


class AccountKind(enum.StrEnum):
    PERSONAL = "personal"  # R-BOX-1
    UNIT = "unit"  # R-BOX-2
    GROUP = "group"  # R-BOX-4


class AccountState(enum.StrEnum):
    ACTIVE = "active"
    MUST_CHANGE_PASSWORD = "must_change_password"  # R-PASS-1
    LOCKED = "locked"  # R-ACC-2, R-LIFE-4/5
    REVOKED = "revoked"  # R-LIFE-1..5
    DELETED = "deleted"


#: States in which an account may log in (IMAP/POP3/submission) and receive mail.
LOGIN_STATES = frozenset({AccountState.ACTIVE, AccountState.MUST_CHANGE_PASSWORD})
RECEIVE_STATES = frozenset({AccountState.ACTIVE, AccountState.MUST_CHANGE_PASSWORD, AccountState.LOCKED})

#: System flags, stored as a bit mask; anything else is a keyword.
SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")

#: Folders every account starts with, and their RFC 6154 special-use attribute.
DEFAULT_FOLDERS = (
    ("INBOX", None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
)


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    address: str  # primary address, lower-case local part and domain
    display_name: str  # NFC (R-TEXT-1)
    kind: AccountKind
    state: AccountState
    password_hash: str | None
    created_at: _dt.datetime
    password_changed_at: _dt.datetime | None
    last_login_at: _dt.datetime | None
    quota_bytes: int | None  # per-account override; None = from policy
    used_bytes: int
    used_messages: int


@dataclass(frozen=True, slots=True)
class Folder:
    id: int
    account_id: int
    name: str
    special_use: str | None
    subscribed: bool
    uidvalidity: int
    uidnext: int
    highestmodseq: int

    @property
    def mailboxid(self) -> str:
        """The folder's object id (IMAP MAILBOXID, RFC 8474 §4): from what never changes while
        it exists, not its name, so RENAME keeps it; never reused, since an account's
        UIDVALIDITY values only grow (a folder id the database reuses comes with a new one)."""
        return f"F{self.account_id:x}-{self.id:x}-{self.uidvalidity:x}"


def email_id(sha256: str) -> str:
    """A message's object id (IMAP EMAILID, RFC 8474 §5.1) from its stored body: every copy
    of one message (COPY, MOVE, a delivery to several folders) has it, as in Cyrus IMAP."""
    return "M" + sha256[:24]


def email_id_prefix(emailid: str) -> str | None:
    """The body-hash prefix an EMAILID names, or None when it is not one of ours."""
    if len(emailid) != 25 or emailid[0] != "M" or any(c not in "0123456789abcdef" for c in emailid[1:]):
        return None
    return emailid[1:]


@dataclass(frozen=True, slots=True)
class FolderStatus:
    folder: Folder
    messages: int
    recent: int
    unseen: int
    size: int  # sum of message sizes (RFC 8438 STATUS SIZE)
    first_unseen_uid: int | None


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A body durably written (or small enough to commit with its rows), with its metadata.

    Produced by ``Store.put_blob`` in the caller's thread, so the writer thread only inserts rows.
    """

    sha256: str
    size: int
    inline: bytes | None  # small bodies: committed in the database with the rows
    path: str | None  # large bodies: a file already fsynced under the blob directory
    meta: dict  # storage.mime.parse() result as JSON-able dict (envelope, structure, search fields)
    index: dict | None = None  # store-internal: folded search columns, computed off the writer thread
    stored: bytes | None = None  # store-internal: ``inline`` as kept in the database (compressed or not)
    codec: str | None = None  # store-internal: how ``stored`` is encoded (storage/codec.py)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One message of an IMAP APPEND: its stored body, flags and INTERNALDATE (None: now)."""

    blob: BlobRef
    flags: frozenset[str] = frozenset()
    internaldate: _dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class MessageInfo:
    uid: int
    modseq: int
    flags: frozenset[str]  # system flags and keywords, e.g. {"\\Seen", "$Forwarded"}
    internaldate: _dt.datetime  # timezone-aware
    size: int
    blob: str  # sha256 of the body
    envelope: dict | None = None  # filled when asked for (fields="envelope"); shared: read-only
    structure: dict | None = None  # filled when asked for (fields="structure"); shared: read-only


#: What ``Store.put_rendered`` keeps per message, in ROW_ENVELOPE.. order.
RENDERED_KINDS = ("envelope", "body", "bodystructure")
#: Positions in a ``Store.fetch_rows`` tuple.
ROW_UID, ROW_MODSEQ, ROW_FLAGS, ROW_DATE, ROW_SIZE, ROW_BLOB, ROW_REF, ROW_ENVELOPE, ROW_BODY, ROW_BODYSTRUCTURE = range(10)


@dataclass(frozen=True, slots=True)
class FolderView:
    """What SELECT needs: the folder and its UIDs in ascending order (MSN i ↔ uids[i-1])."""

    folder: Folder
    uids: Sequence[int]  # ascending; an array("q") from the SQL store
    recent_uids: frozenset[int]
    unseen: int
    first_unseen_uid: int | None
    keywords: Sequence[str] = ()  # the keywords its messages carry (RFC 3501 §7.2.6 FLAGS)


@dataclass(frozen=True, slots=True)
class Changes:
    """Everything that happened to a folder after ``since_modseq`` (CONDSTORE/QRESYNC model)."""

    highestmodseq: int
    uidnext: int
    new: list[MessageInfo]  # messages with uid >= the caller's known uidnext, ascending
    updated: list[MessageInfo]  # older messages whose flags changed (modseq > since)
    expunged: list[int]  # uids expunged after since_modseq, ascending


@dataclass(frozen=True, slots=True)
class DeliveryTarget:
    account_id: int
    folder: str = "INBOX"
    flags: frozenset[str] = frozenset()
    quota_limit: int | None = None  # bytes; checked inside the commit; None = unlimited


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    account_id: int
    ok: bool
    folder_id: int | None = None
    uid: int | None = None
    error: str | None = None  # an ErrorKind value when not ok


#: FolderChange.folder_id of a change to an account's folder list or subscriptions
FOLDER_LIST = 0


@dataclass(frozen=True, slots=True)
class FolderChange:
    """Sent to subscribers after a commit: which folder changed and its new HIGHESTMODSEQ.

    When ``since`` is set, the commit took the folder from HIGHESTMODSEQ ``since`` to
    ``highestmodseq`` by adding exactly ``new`` (ascending UIDs) and nothing else: a listener
    that knew the folder at ``since`` is up to date without asking the store (``changes``).
    A delivery to a thousand mailboxes is then told to a thousand IDLE sessions without a
    thousand queries. Without it (0), a listener asks ``changes`` as before.

    ``folder_id`` FOLDER_LIST (0, no folder's id) says the account's folders or subscriptions
    changed: a folder was created, deleted or renamed, or (un)subscribed (IMAP NOTIFY's
    MailboxName and SubscriptionChange events)."""

    account_id: int
    folder_id: int
    highestmodseq: int
    since: int = 0
    new: tuple[MessageInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class FlagUpdate:
    uid: int
    modseq: int
    flags: frozenset[str]
    before: int = 0  # the message's MODSEQ before this change: was another change folded in?


@dataclass(frozen=True, slots=True)
class StoreResult:
    updated: list[FlagUpdate]
    failed_unchanged_since: list[int] = field(default_factory=list)  # CONDSTORE MODIFIED set


@dataclass(frozen=True, slots=True)
class CopyResult:
    uidvalidity: int  # of the destination (RFC 4315 COPYUID)
    mapping: list[tuple[int, int]]  # (source uid, destination uid)
