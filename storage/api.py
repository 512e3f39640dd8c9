"""The storage API: the only way the front ends (smtp/, imap/, the CLI) touch the mail store.

Contract (see DESIGN.md "Storage"):
- Synchronous and framework-free. Every method is thread-safe; front ends call it off the event
  loop (``await loop.run_in_executor(None, store.method, ...)`` or Twisted's ``deferToThread``).
  The one exception is ``deliver_soon``, which never blocks and returns a future.
- Values in and out are frozen dataclasses, never ORM rows.
- Writes go through one writer thread per process that batches concurrent write jobs into one
  transaction (group commit). A write method returns only after its transaction is durably
  committed (SQLite ``synchronous=FULL``; blob files fsynced before their rows commit). That is
  what lets SMTP say 250 and IMAP say OK (DEVELOPERS.md "Durability").
- Every change to a folder bumps its HIGHESTMODSEQ. New messages have ``uid >= old uidnext``,
  flag changes carry their ``modseq``, expunges are logged with the modseq that removed them.
  ``Store.changes()`` reads exactly that, and ``Store.subscribe()`` tells listeners after each
  commit which folders changed (IDLE, other sessions' updates).
- Quota usage per account is updated in the same transaction as the messages it counts.

Folder names are NFC Unicode with ``/`` as the hierarchy delimiter; INBOX is always "INBOX".
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import enum
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Collection, Iterable, Iterator, Mapping, Protocol, Sequence

from storage.search import Query, SortKey


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
    uids: Sequence[int]
    recent_uids: frozenset[int]
    unseen: int
    first_unseen_uid: int | None


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


@dataclass(frozen=True, slots=True)
class FolderChange:
    """Sent to subscribers after a commit: which folder changed and its new HIGHESTMODSEQ.

    When ``since`` is set, the commit took the folder from HIGHESTMODSEQ ``since`` to
    ``highestmodseq`` by adding exactly ``new`` (ascending UIDs) and nothing else: a listener
    that knew the folder at ``since`` is up to date without asking the store (``changes``).
    A delivery to a thousand mailboxes is then told to a thousand IDLE sessions without a
    thousand queries. Without it (0), a listener asks ``changes`` as before."""

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


@dataclass(frozen=True, slots=True)
class StoreResult:
    updated: list[FlagUpdate]
    failed_unchanged_since: list[int] = field(default_factory=list)  # CONDSTORE MODIFIED set


@dataclass(frozen=True, slots=True)
class CopyResult:
    uidvalidity: int  # of the destination (RFC 4315 COPYUID)
    mapping: list[tuple[int, int]]  # (source uid, destination uid)


class Store(Protocol):
    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None: ...

    def subscribe(self, listener: Callable[[list[FolderChange]], None]) -> Callable[[], None]:
        """Call ``listener`` (from the writer thread, or the notification thread on PostgreSQL)
        after each commit that changed folders. Returns an unsubscribe function. Listeners must
        be quick and must not call the store: hand over to the event loop."""

    # -- domains and accounts ------------------------------------------------------------------
    def add_domain(self, name: str) -> None: ...
    def list_domains(self) -> list[str]: ...
    def is_local_domain(self, name: str) -> bool: ...

    def create_account(
        self,
        address: str,
        display_name: str,
        password_hash: str | None,
        *,
        kind: AccountKind = AccountKind.PERSONAL,
        state: AccountState = AccountState.MUST_CHANGE_PASSWORD,
    ) -> Account:
        """Create the account and its DEFAULT_FOLDERS in one transaction. ``Exists`` if taken."""

    def get_account(self, address: str) -> Account | None:
        """Look up by any of the account's addresses (case-insensitive)."""

    def peek_account(self, address: str) -> Account | None:
        """``get_account`` from memory only, callable on the event loop: the account when this
        address was looked up lately and nothing committed since could have changed it, else
        None (then ask ``get_account``). storage/recipients.py says when entries go."""

    def get_account_by_id(self, account_id: int) -> Account | None: ...
    def get_accounts_by_ids(self, account_ids: Sequence[int]) -> dict[int, Account]:
        """Many accounts in a few queries (the quota watcher after a group delivery); ids that
        do not exist are absent from the result."""
    def list_accounts(self) -> list[Account]: ...
    def set_password(self, account_id: int, password_hash: str, *, state: AccountState | None = None, rehash: bool = False) -> None:
        """``rehash`` = same password, new parameters: the password's age (R-PASS-4) is kept."""
    def set_state(self, account_id: int, state: AccountState) -> None: ...
    def record_login(self, account_id: int, when: _dt.datetime) -> None: ...
    def delete_account(self, account_id: int) -> None:
        """Remove the account, its folders and messages (bodies are garbage-collected)."""

    # -- folders -------------------------------------------------------------------------------
    def list_folders(self, account_id: int) -> list[Folder]: ...
    def get_folder(self, account_id: int, name: str) -> Folder:
        """``NotFound`` if missing. ``name`` is matched exactly, except INBOX (any case)."""

    def create_folder(self, account_id: int, name: str, *, special_use: str | None = None) -> Folder: ...
    def delete_folder(self, account_id: int, name: str) -> None:
        """Deletes the folder and its messages (quota released). INBOX → ``NoPerm``."""

    def rename_folder(self, account_id: int, old: str, new: str) -> None:
        """Renames the folder and its children. Renaming INBOX moves its messages (RFC 3501)."""

    def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None: ...
    def folder_status(self, folder_id: int) -> FolderStatus: ...

    # -- messages: reading ---------------------------------------------------------------------
    def open_view(self, folder_id: int, *, claim_recent: bool) -> FolderView:
        """Snapshot for SELECT/EXAMINE. ``claim_recent`` (read-write SELECT) takes the \\Recent
        messages for this session so no other session sees them as recent."""

    def fetch(self, folder_id: int, uids: Iterable[int], *, fields: frozenset[str] = frozenset()) -> list[MessageInfo]:
        """Messages with these uids (ascending; missing ones skipped). ``fields`` may hold
        "envelope" and/or "structure" to load the cached metadata too."""

    def iter_fetch(
        self, folder_id: int, uids: Sequence[int], *, fields: frozenset[str] = frozenset(), batch: int = 500
    ) -> Iterator[list[MessageInfo]]:
        """Like ``fetch`` in batches, so a FETCH over 100,000 messages never loads them all."""

    def fetch_rows(
        self, folder_id: int, uids: Sequence[int], *, date: bool = False, rendered: int | None = None,
        kinds: Collection[str] = RENDERED_KINDS, batch: int = 2000, blob: bool = True,
    ) -> Iterator[list[tuple]]:
        """FETCH over whole folders: like ``iter_fetch`` (ascending, missing uids skipped, in
        batches) but each message is a plain tuple, laid out as the ``ROW_*`` positions say,
        because building a MessageInfo per message cost more than the query. ``flags`` is a
        shared frozenset; ``internaldate`` is None unless ``date``; ``ref`` names the message for
        ``put_rendered``; the renderings of ``kinds`` are what ``put_rendered`` stored with version
        ``rendered`` for this very body (None when absent, stale, not in ``kinds``, or
        ``rendered`` is None). ``blob=False``: the body's hash and ``ref`` only where a rendering
        of ``kinds`` is missing (what rendering and keeping it needs), else None — a 64-character
        string per message was a sixth of a FETCH 1:* (BODYSTRUCTURE)."""

    def body_meta(self, shas: Sequence[str], fields: frozenset[str]) -> dict[str, tuple[dict | None, dict | None]]:
        """(envelope, structure) cached at delivery, by body, each None unless in ``fields``
        ("envelope", "structure"); shared dicts: read-only."""

    def put_rendered(
        self, version: int, items: Sequence[tuple[int, str, bytes | None, bytes | None, bytes | None]], *, wait: bool = False
    ) -> None:
        """Keep a front end's renderings of messages' cached metadata: ``(ref, blob, envelope,
        body, bodystructure)``, None for a part not rendered (one already kept stays). Rows of
        another body or version are replaced; messages gone meanwhile are skipped. A cache, not
        mail: queued and written in the background through the writer (never on the delivery
        path; dropped when too much waits) unless ``wait``; deleted with the message."""

    def unrendered(self, version: int, after: int, limit: int = 500) -> tuple[list[tuple[int, str, dict | None, dict | None]], int]:
        """Messages keyed above ``after`` with no renderings of ``version`` kept, ascending by
        key: ``[(ref, blob, envelope, structure)]`` (shared dicts: read-only), and the key to
        continue after (the highest looked at). For rendering ahead of the first FETCH."""

    def open_blob(self, sha256: str) -> BinaryIO:
        """A readable, seekable file of the stored bytes (byte for byte as received)."""

    def read_blob(self, sha256: str, offset: int = 0, length: int | None = None) -> bytes: ...

    def read_blobs(self, shas: Sequence[str]) -> dict[str, bytes]:
        """Whole bodies of several blobs in one round trip (FETCH of many bodies)."""

    def read_heads(self, lengths: Mapping[str, int]) -> dict[str, bytes]:
        """The first ``lengths[sha]`` bytes of each blob, in one round trip: the header sections
        a client's FETCH of header fields over a folder needs, without reading the bodies."""

    def changes(self, folder_id: int, since_modseq: int, known_uidnext: int) -> Changes: ...

    def search(self, folder_id: int, query: Query) -> list[int]:
        """UIDs matching ``query``, ascending. Runs on the indexes kept at delivery."""

    def sort(self, folder_id: int, keys: Sequence[SortKey], query: Query) -> list[int]: ...

    # -- messages: writing ---------------------------------------------------------------------
    def parse_message(self, source: bytes | BinaryIO, *, measure: bool = False) -> dict:
        """``storage.mime.parse`` of ``source`` with this store's options (search text, nesting
        limit); ``measure`` adds what the attachment limit reads (``quota.measure_attachments``)
        and leaves out ENVELOPE and the header search fields, which ``put_blob(parsed=)`` builds
        from the stored header section. CPU only: an event loop may call it for a small message.
        Given back to ``put_blob``, the message is not parsed twice."""

    def put_blob(self, source: bytes | BinaryIO, *, prefix: bytes = b"", parsed: dict | None = None) -> BlobRef:
        """Hash, parse and (for large bodies) write and fsync ``prefix + source``. Runs in the
        caller's thread; nothing is visible until a delivery or append that uses it commits.
        ``parsed``: ``parse_message`` of the same source read from offset 0; used when the source
        now stands at 0 or just after its header section (``prefix`` then holds the header
        section that replaces it), so only that section is read again."""

    def blob_on_disk(self, size: int) -> bool:
        """Whether ``put_blob`` of ``size`` bytes writes and fsyncs a file (else it only hashes
        and parses: CPU work an event loop may do itself for a small message)."""

    def deliver(self, blob: BlobRef, targets: Sequence[DeliveryTarget], *, internaldate: _dt.datetime | None = None) -> list[DeliveryOutcome]:
        """One transaction: one body, many message rows (group fan-out is many targets). Each
        target is checked against its quota_limit inside the commit; a target that fails
        (NOQUOTA, NOTFOUND) does not stop the others. Returns after the durable commit."""

    def deliver_soon(self, blob: BlobRef, targets: Sequence[DeliveryTarget], *, internaldate: _dt.datetime | None = None) -> concurrent.futures.Future:
        """``deliver`` without waiting: queued for the next group commit, the future gets the
        outcomes once it is durable. Never blocks: an event loop awaits the future instead of
        parking a worker thread on every commit in flight."""

    def append(self, folder_id: int, blob: BlobRef, *, flags: frozenset[str] = frozenset(), internaldate: _dt.datetime | None = None, quota_limit: int | None = None) -> tuple[int, int]:
        """Store into one folder; returns (uidvalidity, uid). ``NoQuota`` when over the limit."""

    def store_flags(self, folder_id: int, uids: Sequence[int], mode: str, flags: frozenset[str], *, unchanged_since: int | None = None) -> StoreResult:
        """``mode`` is "set", "add" or "remove". Each changed message gets a new modseq."""

    def expunge(self, folder_id: int, uids: Sequence[int] | None = None) -> list[int]:
        """Remove the \\Deleted messages (among ``uids`` when given). Returns removed uids."""

    def copy(self, src_folder_id: int, uids: Sequence[int], dst_folder_id: int, *, move: bool = False, quota_limit: int | None = None) -> CopyResult:
        """Copy (or move: copy and expunge in one transaction) sharing the bodies."""
