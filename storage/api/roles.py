"""One interface per role of the store, with its contract (the implementation: storage/sql/).
All in one module on purpose (the interfaces declared in one place); hence its length.

The store itself (``Store``) is the roles composed, plus change notification and ``close``.
Front ends receive the store (or one role) and call it off their event loop:
``await loop.run_in_executor(None, store.messages.deliver, ...)`` or Twisted's ``deferToThread``.
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
from typing import BinaryIO, Callable, Collection, Iterable, Iterator, Mapping, Protocol, Sequence

from quota.retention import RetentionRule
from storage.api import types as api
from storage.api.lifecycle import Record
from storage.api.org import (
    OPERATOR,
    AuditEntry,
    Delegation,
    DirectoryRow,
    Group,
    NewPerson,
    Profile,
    Right,
    SendPolicy,
    SharedMailbox,
    Unit,
)
from storage.api.held import HeldMessage
from storage.api.queue import Claim, EnvelopeOptions, Outcome, QueuedMessage, StsPolicy, TlsCount
from storage.api.sieve import Forward, SieveScript
from storage.api.stats import StoreStats
from storage.api.usage import DayFacts
from storage.api.announcements import Scheduled
from storage.api.types import (
    RENDERED_KINDS,
    Account,
    AccountKind,
    AccountState,
    BlobRef,
    Changes,
    CopyResult,
    DeliveryOutcome,
    DeliveryTarget,
    Folder,
    FolderChange,
    FolderStatus,
    FolderView,
    MessageInfo,
    NewMessage,
    StoreResult,
)
from storage.api.usage import Drift, Expired
from storage.search import Query, SortKey, ThreadMessage


class Accounts(Protocol):
    """Domains and accounts (R-BOX-1/2/4, R-ACC-*, R-PASS-*).

    Thread-safe; reads run on the caller's thread. Each write is one job of the writer's group
    commit and returns after the durable commit. ``peek_account`` alone may be called on an event
    loop (memory only)."""

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

    def password_history(self, account_id: int, limit: int) -> list[str]:
        """The current password hash and the ones before it, newest first, at most ``limit``
        (``set_password`` keeps the one it replaces, except for a ``rehash``)."""

    def set_state(self, account_id: int, state: AccountState) -> None: ...

    def record_login(self, account_id: int, when: _dt.datetime) -> None: ...

    def delete_account(self, account_id: int) -> None:
        """Remove the account, its folders and messages (bodies are garbage-collected)."""

class Folders(Protocol):
    """An account's folders (names NFC, ``/`` the delimiter, INBOX always "INBOX").

    Thread-safe; each write is one transaction, returning after the durable commit. Deleting a
    folder releases its quota in the same transaction; a change bumps the folder's HIGHESTMODSEQ
    and subscribers are told after the commit."""

    def list_folders(self, account_id: int) -> list[Folder]: ...

    def get_folder(self, account_id: int, name: str) -> Folder:
        """``NotFound`` if missing. ``name`` is matched exactly, except INBOX (any case)."""

    def create_folder(self, account_id: int, name: str, *, special_use: str | None = None) -> Folder: ...

    def delete_folder(self, account_id: int, name: str) -> None:
        """Deletes the folder and its messages (quota released). INBOX → ``NoPerm``."""

    def rename_folder(self, account_id: int, old: str, new: str) -> None:
        """Renames the folder and its children. Renaming INBOX moves its messages (RFC 3501)."""

    def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None: ...

    def subscriptions(self, account_id: int) -> list[str]:
        """The subscribed names, sorted; a name may outlive its folder (RFC 3501 §6.3.6)."""

    def folder_status(self, folder_id: int) -> FolderStatus: ...

class Messages(Protocol):
    """Messages: SELECT views, FETCH, bodies, the change log; delivery, APPEND, flags, EXPUNGE,
    COPY and MOVE.

    Thread-safe; ``deliver_soon`` alone never blocks (it returns a future). Every path that adds
    messages goes through the store's one write primitive: UIDs reserved, quota charged (the
    ``quota_limit`` checked inside the commit with ``quota.decide``) and rows added in one
    transaction, so usage always counts exactly the committed messages. Writes return after the
    durable commit; subscribers hear of it after."""

    def open_view(self, folder_id: int, *, claim_recent: bool) -> FolderView:
        """Snapshot for SELECT/EXAMINE. ``claim_recent`` (read-write SELECT) takes the \\Recent
        messages for this session so no other session sees them as recent."""

    def claim_recent(self, claims: Sequence[tuple[int, int]]) -> list[int]:
        """For each (folder_id, below): raise the folder's \\Recent floor to ``below`` and return
        the floor before (RFC 3501 §2.3.2). Messages from that floor up to ``below`` are
        \\Recent in the claiming session alone; one writer transaction for all the claims (the
        sessions that heard of one delivery), so two sessions never take the same message."""

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

    def unrendered(self, version: int, after: int, limit: int = 500) -> tuple[list[tuple[int, str, dict | None, dict | None]], int]:
        """Messages keyed above ``after`` with no renderings of ``version`` kept, ascending by
        key: ``[(ref, blob, envelope, structure)]`` (shared dicts: read-only), and the key to
        continue after (the highest looked at). For rendering ahead of the first FETCH."""

    def put_rendered(
        self, version: int, items: Sequence[tuple[int, str, bytes | None, bytes | None, bytes | None]], *, wait: bool = False
    ) -> None:
        """Keep a front end's renderings of messages' cached metadata: ``(ref, blob, envelope,
        body, bodystructure)``, None for a part not rendered (one already kept stays). Rows of
        another body or version are replaced; messages gone meanwhile are skipped. A cache, not
        mail: queued and written in the background through the writer (never on the delivery
        path; dropped when too much waits) unless ``wait``; deleted with the message."""

    def open_blob(self, sha256: str) -> BinaryIO:
        """A readable, seekable file of the stored bytes (byte for byte as received)."""

    def read_blob(self, sha256: str, offset: int = 0, length: int | None = None) -> bytes: ...

    def save_dates(self, folder_id: int, uids: Sequence[int]) -> dict[int, _dt.datetime | None]:
        """UID → when the message was added to this folder (RFC 8514 SAVEDATE); None for
        messages stored before save dates were kept."""

    def read_blobs(self, shas: Sequence[str]) -> dict[str, bytes]:
        """Whole bodies of several blobs in one round trip (FETCH of many bodies)."""

    def read_heads(self, lengths: Mapping[str, int]) -> dict[str, bytes]:
        """The first ``lengths[sha]`` bytes of each blob, in one round trip: the header sections
        a client's FETCH of header fields over a folder needs, without reading the bodies."""

    def changes(self, folder_id: int, since_modseq: int, known_uidnext: int) -> Changes: ...

    def parse_message(self, source: bytes | BinaryIO, *, measure: bool = False, search_text: bool | None = None) -> dict:
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

    def append_many(self, folder_id: int, messages: Sequence[NewMessage], *, quota_limit: int | None = None) -> tuple[int, list[int]]:
        """Store all of ``messages`` into one folder in one transaction, or none of them (IMAP
        MULTIAPPEND, RFC 3502): consecutive UIDs, the quota checked for their sum. Returns
        (uidvalidity, uids in order). ``NoQuota`` when over the limit."""

    def store_flags(self, folder_id: int, uids: Sequence[int], mode: str, flags: frozenset[str], *, unchanged_since: int | None = None) -> StoreResult:
        """``mode`` is "set", "add" or "remove". Each changed message gets a new modseq."""

    def expunge(self, folder_id: int, uids: Sequence[int] | None = None) -> list[int]:
        """Remove the \\Deleted messages (among ``uids`` when given). Returns removed uids."""

    def copy(self, src_folder_id: int, uids: Sequence[int], dst_folder_id: int, *, move: bool = False, quota_limit: int | None = None) -> CopyResult:
        """Copy (or move: copy and expunge in one transaction) sharing the bodies."""

class Search(Protocol):
    """SEARCH and SORT over the indexes kept at delivery, and their upkeep.

    Thread-safe reads. On SQLite the body text and FTS5 indexes are filled by a background thread
    in quiet moments; a query on text not yet indexed fills what waits first, so results are
    exact either way. ``fill_bodies``/``index_pending``/``index_backlog`` are that upkeep (0 on
    PostgreSQL)."""

    def fill_bodies(self, limit: int | None = None) -> int:
        """Fill ``blob_meta.headers`` and ``body`` (the folded text of every header field and of
        the text parts; R-TEXT-1) of up to ``limit`` bodies (None: all) delivered since the last fill;
        returns how many.

        Why later: decoding and folding that text was a third of the event loop's CPU per
        delivered message, and nothing reads those columns but SEARCH and the FTS5 indexes. The
        indexer fills them in quiet moments (or when much waits) before it indexes those rows;
        ``search``/``sort`` fill what still waits before a query on that text (BODY, TEXT, a
        header without a column of its own), as Dovecot's FTS indexes the mail it has not
        reached before it answers. The work (parse and fold) is
        done outside the writer; the writer job only stores it, if no delete moved the mark."""

    def index_pending(self, limit: int = 200) -> int:
        """Fill up to ``limit`` bodies' search text, then add up to ``limit`` filled bodies to
        each search index (FTS5 trigrams, FTS5 words and their reversed words); returns how many
        were filled or added to the index furthest behind."""

    def index_backlog(self) -> int:
        """Delivered bodies not yet in the search index furthest behind (0 on PostgreSQL)."""

    def search(self, folder_id: int, query: Query) -> list[int]:
        """UIDs matching ``query``, ascending. Runs on the indexes kept at delivery."""

    def sort(self, folder_id: int, keys: Sequence[SortKey], query: Query) -> list[int]: ...

    def thread_messages(self, folder_id: int, query: Query) -> list[ThreadMessage]:
        """What RFC 5256 THREAD needs of the messages matching ``query``, in UID order."""

class Organisation(Protocol):
    """The organisation model (R-BOX-2/3/4, R-ACC-1, R-DIR-1): units, delegations and
    rights, handover, groups, profiles, the audit log.

    Thread-safe; each write is one transaction in the group commit, returning once durable.
    Rights are derived, never cached: an account has every right on its own mailbox and on the
    unit mailbox it heads, a delegate what its delegation says. A handover changes the head in
    the same transaction as the password. Errors: ``NotFound``, ``Exists``, ``NoPerm``,
    ``Invalid``."""

    accounts: Accounts  # the accounts role it builds on (units and groups are accounts)


    def add_unit(
        self, name: str, code: str, address: str, password_hash: str | None, *,
        parent: str | None = None, head_account_id: int | None = None,
    ) -> Unit:
        """Create the unit and its mailbox (an account of kind "unit") in one transaction.

        ``parent``: code of the parent unit. ``Exists`` if the code or address is taken."""

    def rename_unit(self, code: str, name: str) -> Unit:
        """New name for the unit and its mailbox's display name (audited). ``NotFound``."""

    def move_unit(self, code: str, parent: str | None) -> Unit:
        """Put the unit under ``parent`` (None: top level); ``Invalid`` under itself (audited)."""

    def remove_unit(self, code: str) -> None:
        """Remove the unit (its delegations go; its mailbox account stays for the caller to
        delete or keep). ``Invalid`` while a person's profile or a unit is still in it (audited)."""

    def get_unit(self, code_or_address: str) -> Unit | None:
        """By code (any case) or by any address of the unit mailbox."""

    def unit_by_id(self, unit_id: int) -> Unit | None: ...

    def list_units(self) -> list[Unit]:
        """Every unit, parents before their children, siblings by code."""

    def rename_account(self, account_id: int, new_address: str, *, alias_until: _dt.datetime | None,
                       keep_alias: bool = True) -> api.Account:
        """New primary address; the old one reaches the account until ``alias_until`` (None: until
        removed by hand), or not at all unless ``keep_alias``. ``Exists`` when taken (audited)."""

    def expire_aliases(self, now: _dt.datetime) -> list[tuple[str, str]]:
        """Remove the old addresses of renamed accounts whose time is over: [(old, account address)]."""

    def add_address(self, account_id: int, address: str) -> None:
        """Give an account one more address (a unit may have several, R-BOX-2). ``Exists`` if taken."""

    def delegate(
        self, unit_account_id: int, delegate_account_id: int, rights: Iterable[Right], *, granted_by: int | None = None
    ) -> Delegation:
        """Grant (or replace) a delegate's rights on a unit mailbox. ``granted_by`` is the head
        when the head does it (e.g. from a mail client); None is the operator acting on the head's
        written request. Anyone else → ``NoPerm``."""

    def undelegate(self, unit_account_id: int, delegate_account_id: int, *, revoked_by: int | None = None) -> None: ...

    def delegations(self, unit_account_id: int) -> list[Delegation]: ...

    def rights_for(self, account_id: int, mailbox_account_id: int) -> frozenset[Right]:
        """What ``account_id`` may do in ``mailbox_account_id`` (empty: nothing, R-ACC-1)."""

    def check_right(self, account_id: int, mailbox_account_id: int, right: Right) -> None:
        """``NoPerm`` unless the account holds ``right`` there (IMAP: ``NO [NOPERM]``)."""

    def resolve_login(
        self, authcid_account: api.Account, authzid_address: str | None, *, via: str = ""
    ) -> tuple[api.Account, frozenset[Right]]:
        """SASL PLAIN authorization identity (RFC 4616): after ``authcid_account`` proved its
        password, the session acts as ``authzid_address``. Empty or own address → itself with
        every right. A unit mailbox it heads or is delegated with READ → the unit account and the
        rights; the access is recorded (action "login", detail ``via``). Anything else (personal
        or group mailbox, unknown address, unit it has no READ on, unit not in a login state) →
        ``NoPerm``, the same for each so the answer reveals nothing."""

    def mailboxes_visible_to(self, account_id: int) -> list[SharedMailbox]:
        """The unit mailboxes ``account_id`` heads or is delegated, for the IMAP shared namespace
        (RFC 2342): each unit's folders appear under ``path`` + "/" + folder name."""

    def may_send_as(self, account_id: int, address: str) -> bool:
        """Submission: may ``account_id`` use ``address`` as its sender? Its own addresses, and
        the addresses of unit mailboxes it heads or holds SEND_AS on (R-BOX-2, R-ACC-1)."""

    def record_access(
        self, actor_account_id: int | None, mailbox_account_id: int, action: str, detail: str = ""
    ) -> None:
        """Record one access to a mailbox by someone other than its owner (who, when, what,
        which mailbox). Front ends call it for delegate logins, SELECT/EXAMINE of a shared unit
        mailbox, flag changes, expunges, appends and send-as. Durable when it returns."""

    def audit_log(self, mailbox_account_id: int | None = None, *, limit: int = 100) -> list[AuditEntry]:
        """Newest first; all mailboxes when ``mailbox_account_id`` is None."""

    def handover(
        self, unit_code: str, new_head_account_id: int, new_password_hash: str, *,
        revoke_delegations: bool = False, actor_account_id: int | None = None,
    ) -> Unit:
        """Make ``new_head_account_id`` the head and owner of the unit mailbox and give it a new
        password, in one transaction with its audit record. Messages, folders, flags, UIDs and
        addresses are not touched: nothing is lost. The mailbox must change that password at
        first login (R-PASS-1) unless it is locked, which it stays. Delegations stay (they are the
        unit's) unless ``revoke_delegations``; a delegation of the new head itself ends."""

    def add_group(self, address: str, display_name: str, *, send_policy: SendPolicy = SendPolicy.DOMAINS) -> Group:
        """A group mailbox: an account of kind "group" (no password, no login) and its policy."""

    def get_group(self, group: str | int) -> Group | None:
        """By address (any of the group's) or account id."""

    def list_groups(self) -> list[Group]: ...

    def set_send_policy(self, group_account_id: int, policy: SendPolicy) -> None: ...

    def add_member(self, group_account_id: int, member_account_id: int) -> None:
        """Add an account (personal, unit or group) to a group. A member that would make the
        group contain itself is refused with the loop's path (``Invalid``); ``Exists`` if already
        a member."""

    def add_members(self, group_account_id: int, member_account_ids: Sequence[int]) -> None:
        """``add_member`` for many accounts in ONE transaction: all are added or none."""

    def remove_member(self, group_account_id: int, member_account_id: int) -> None: ...

    def expand_recipients(self, group: str | int) -> list[int]:
        """Account ids that receive a message sent to the group (R-BOX-4): nested groups expanded
        once each, every account once, in a stable order; members that cannot receive (revoked,
        deleted) left out. Empty list: the group has no one to deliver to (or is not a group, or
        cannot receive) → the caller refuses the recipient. A loop (which ``add_member`` refuses)
        is cut rather than followed."""

    def expand_accounts(self, group: str | int) -> list[api.Account]:
        """``expand_recipients`` as Account values (what smtp.delivery.targets_for takes)."""

    def may_send_to_group(self, group: str | int, sender_address: str) -> bool:
        """The group's send policy applied to an envelope sender (R-BOX-4). The null sender
        ``<>`` passes only "anyone". On the MX listener the sender is unauthenticated: "domains"
        and "members" there are as strong as the sender checks (SPF/DKIM) in front of them."""

    def taken_local_parts(self, domain: str) -> set[str]:
        """Local parts used in ``domain`` by any account, revoked ones included (R-ADDR-*)."""

    def person_keys(self) -> set[str]: ...

    def create_people(self, people: Sequence[NewPerson]) -> list[api.Account]:
        """Create personal accounts with their profiles in ONE transaction: all or nothing.
        ``Exists`` (nothing created) if an address is taken or a person is already registered."""

    def set_profile(self, account_id: int, *, unit_id: int | None = None, title: str = "", phone: str = "",
                    mobile: str = "") -> None: ...

    def get_profile(self, account_id: int) -> Profile | None: ...

    def directory_rows(self) -> list[DirectoryRow]:
        """Every unit, group and personal account that can receive mail (R-DIR-1), unsorted."""

class OutboundQueue(Protocol):
    """The durable outbound queue, shared by every server process (R-SEC-2: the body is
    a blob of the store, sent byte for byte).

    Thread-safe; writes return after the durable commit (``enqueue`` returning means 250 may be
    said). A claim sets a lease; an item whose lease ran out (its process died) is claimed again.
    On PostgreSQL processes claim with ``SELECT … FOR UPDATE SKIP LOCKED``; on SQLite the one
    writer serialises claims."""

    def enqueue(
        self,
        blob: BlobRef | str,
        sender: str,
        recipients: Sequence[str],
        *,
        tx_id: str | None = None,
        now: _dt.datetime | None = None,
        options: EnvelopeOptions | None = None,
    ) -> int:
        """Queue ``blob`` (a BlobRef from ``put_blob``, or the sha256 of a stored body) for
        ``recipients``; returns the message id once durably committed (then say 250).
        ``options``: RFC 3461 DSN parameters and RFC 8689 REQUIRETLS, kept with the rows."""

    def enqueue_soon(self, blob: BlobRef | str, sender: str, recipients: Sequence[str], *, tx_id: str | None = None,
                     now: _dt.datetime | None = None, options: EnvelopeOptions | None = None) -> concurrent.futures.Future:  # fmt: skip
        """``enqueue`` without waiting: the future gets the message id once it is durable. Never
        blocks (raises ``Invalid`` at once for no or malformed recipients)."""

    def claim(self, limit: int, *, owner: str, lease: int, now: _dt.datetime | None = None) -> list[Claim]:
        """Take up to ``limit`` due (message, domain) groups for ``lease`` seconds."""

    def record(self, outcomes: Sequence[Outcome], *, now: _dt.datetime | None = None) -> None:
        """Store attempt results (and release the lease) in one commit."""

    def record_soon(self, outcomes: Sequence[Outcome], *, now: _dt.datetime | None = None) -> concurrent.futures.Future:
        """``record`` without waiting: the future is done once the results are durable."""

    def owed_dsns(self, limit: int = 100) -> list[QueuedMessage]:
        """Messages with recipients in state BOUNCE (their DSN is still to be delivered)."""

    def add_tls_counts(self, counts: Sequence[TlsCount]) -> None:
        """Add outbound TLS session counts (TLS-RPT, RFC 8460) to the day's totals."""

    def tls_counts(self, before_day: str) -> list[TlsCount]:
        """The counts of days before ``before_day`` (YYYY-MM-DD): what the daily reports owe."""

    def drop_tls_counts(self, days: Sequence[str]) -> None:
        """Forget the counts of ``days`` (their reports went out)."""

    def sts_policies(self, now: _dt.datetime | None = None) -> list[StsPolicy]:
        """The MTA-STS policies not yet expired (loaded by the worker at start)."""

    def save_sts_policy(self, policy: StsPolicy) -> None:
        """Keep a newly fetched MTA-STS policy (replacing the domain's previous one)."""

    def dsn_done(self, recipient_ids: Sequence[int]) -> None:
        """The DSN for these BOUNCE recipients is delivered: FAILED, and drop finished messages."""

    def release(self, owner: str | None = None) -> int:
        """Clear leases (all, or ``owner``'s): at start-up of the only process on SQLite."""

    def next_due(self, now: _dt.datetime | None = None) -> _dt.datetime | None:
        """When the earliest claimable queued recipient is due, or None (claimed ones excluded:
        their lease ending is what makes them due again)."""

    def list(self) -> list[QueuedMessage]: ...

    def show(self, message_id: int) -> QueuedMessage: ...

    def retry(self, message_id: int | None = None, *, now: _dt.datetime | None = None) -> int:
        """Make queued recipients (of one message, or all) due now; returns how many."""

    def delete(self, message_id: int) -> None:
        """Remove a message from the queue without a DSN (operator's decision)."""

class Announcements(Protocol):
    """Notices scheduled for later delivery (R-OPS-3); thread-safe, each call one transaction.
    ``claim_due`` hands each due notice to exactly one caller across processes."""

    def schedule(self, due_at: _dt.datetime, subject: str, raw: bytes, unit_code: str | None = None) -> int: ...

    def claim_due(self, now: _dt.datetime) -> list[Scheduled]: ...

    def finish(self, announcement_id: int, delivered: int) -> None: ...

    def listing(self) -> list[Scheduled]: ...


class Usage(Protocol):
    """Quota usage, limits, warnings, retention (R-QUOTA-1/2) and store-wide figures.

    Thread-safe; each operation is one transaction (``expire`` one per batch), returning once
    durable. Message removal writes the change log and releases usage exactly as EXPUNGE does,
    and subscribers are told. ``claim_notified`` is a compare-and-set across processes."""

    def set_quota(self, account_id: int, quota_bytes: int | None) -> None:
        """Per-account mailbox limit (``accounts.quota_bytes``); None = back to the policy's."""

    def set_class(self, account_id: int, class_name: str | None) -> None:
        """Name the ``quota.classes`` entry of an account; on a unit mailbox it is the unit's class."""

    def class_for(self, account_id: int) -> str | None:
        """The account's own class, else its unit's (from the registration profile), else the
        nearest parent unit's. None when nothing names one."""

    def notified(self, account_id: int) -> int:
        """Highest warning threshold (percent) already sent to this account; 0 = none."""

    def notified_many(self, account_ids: Sequence[int]) -> dict[int, int]:
        """``notified`` for many accounts in a few queries (a group delivery commits a thousand)."""

    def claim_notified(self, account_id: int, expected: int, new: int) -> bool:
        """Compare-and-set of the notified threshold: True only for the one caller (thread or
        process) that moved it from ``expected`` to ``new``, so each crossing is told once."""

    def report(self) -> list[api.Account]:
        """Every account with its usage, largest first (``quota report``)."""

    def count(self, account_id: int, fact: str, n: int = 1, at: _dt.datetime | None = None) -> None:
        """Add ``n`` to ``fact`` (one of ``api.DAY_FACTS``) of the account's local day (R-OPS-1/2).
        Never blocks on I/O (callable on an event loop): counts are written in batches a few
        seconds later, outside any delivery's transaction."""

    def flush_counts(self) -> int:
        """Write the counts now (reports read them; the batch writer does it by itself)."""

    def prune_days(self, before: _dt.date) -> int:
        """Remove the daily counters of days before ``before`` (``reports.keep_years``)."""

    def day_facts(self, start: _dt.date, end: _dt.date, account_ids: Sequence[int] | None = None) -> list[DayFacts]:
        """The daily counters from ``start`` to ``end`` (local days, inclusive), by account then day."""

    def recalc(self, account_id: int | None = None) -> list[Drift]:
        """Rebuild ``used_bytes``/``used_messages`` of one account (or all) from its messages, in
        one write job, and return the accounts whose stored figures were wrong (before fixing)."""

    def stats(self) -> StoreStats:
        """Figures about the whole store for monitoring (the portal's ``/metrics``): a few aggregate
        queries, cheap with the existing indexes, meant to be read every 15-60 s, not per message."""

    def expire(
        self,
        rules: Iterable[RetentionRule],
        now: _dt.datetime,
        *,
        dry_run: bool,
        account_ids: Sequence[int] | None = None,
        keep: Collection[tuple[str, str]] = (),
    ) -> list[Expired]:
        """Messages whose INTERNALDATE is before their folder's cutoff (``quota.retention``).
        A dry run lists them; a real run expunges them (change log written, quota released),
        at most ``EXPIRE_BATCH`` per write job, and lists what it removed. ``keep``: (address,
        folder name) pairs no rule touches (a unit's archive kept by the operator)."""

class Lifecycle(Protocol):
    """Account lifecycle (R-LIFE-1..5, R-PASS-1/3, R-ACC-2): the facts the policy decides on
    and the state changes.

    Thread-safe; a state change, its lifecycle row and its audit entry commit together. Changes
    are compare-and-set on the state the caller saw, so two processes (or the job and an
    operator) change an account once."""

    def records(self, account_id: int | None = None) -> list[Record]:
        """Every account with its facts, by address. A unit mailbox counts as accessed when its
        head logged in or a delegate used it (org_audit), since they reach it from their own
        sessions (R-BOX-2); its own logins count too."""

    def record(self, account_id: int) -> Record | None: ...

    def unit_contacts(self, account_id: int) -> tuple[str | None, list[api.Account]]:
        """(unit name, who is told of a change to ``account_id``): the mailbox of the account's
        unit (else of the unit it heads) and the unit's head (for a unit mailbox: its head), able
        to receive, without the account itself (R-LIFE-3 "the operator notifies the unit by mail")."""

    def change_state(
        self, account_id: int, expected: api.AccountState, state: api.AccountState, reason: str, *,
        now: _dt.datetime, actor: str = OPERATOR, action: str | None = None, detail: str = "",
        password_hash: str | None = None, reactivate: bool = False, clear_leaving: bool = False,
    ) -> bool:
        """Move the account from ``expected`` to ``state`` with ``reason`` in one transaction,
        with its audit entry; False (nothing written) when its state is no longer ``expected``.
        ``reactivate`` (operator unlock, re-issue) restarts the inactivity clock;
        ``clear_leaving`` forgets the leaving notice, so the job does not revoke a re-issued
        account again; ``password_hash`` sets a new password in the same transaction."""

    def set_leaving(
        self, account_id: int, *, notice_at: _dt.datetime | None, left_at: _dt.datetime | None,
        keep: bool,
    ) -> None:
        """Record the unit's written notice (R-LIFE-2/4) and/or the leaving date; ``keep``: a former
        head keeps the mailbox on request (most art. 18.3). All None and not ``keep`` cancels."""

    def set_exempt(self, account_id: int, exempt: bool) -> None:
        """Keep (or stop keeping) the account out of the inactivity rules: service accounts,
        mailboxes kept on the unit's request."""


class LoginFailures(Protocol):
    """Failed logins counted per key (a client address, an account name as typed) for the login
    guard (R-SEC-1, mailserver/policy/guard.py); shared by every process of the store. Times are
    epoch seconds. Thread-safe."""

    def tallies(self, keys: Sequence[str]) -> dict[str, tuple[int, float]]:
        """(failures, time of the last one) of each key that has a tally."""

    def add_failure(self, keys: Sequence[str], now: float, forget_after: float, count: int = 1) -> dict[str, int]:
        """Count ``count`` failures at ``now`` under each key (a tally whose last failure is
        ``forget_after`` seconds old starts again); the new counts, in one transaction. A
        negative ``count`` takes failures back (never below 0, the time of the last one kept).
        The sending rates of submission count messages and recipients the same way."""

    def clear(self, keys: Sequence[str]) -> None:
        """Forget the tallies of ``keys`` (a successful login)."""

    def prune(self, older_than: float, max_entries: int) -> int:
        """Forget tallies whose last failure is before ``older_than``, then the oldest ones
        beyond ``max_entries``; how many were removed."""


class SessionLocks(Protocol):
    """Locks held for a session's length that exclude the other server processes on the store
    (the POP3 maildrop lock of RFC 1939); within a process the caller excludes its own sessions.
    Thread-safe; blocking on PostgreSQL (call from a worker thread). A lock of a process that
    dies is released with it."""

    def try_lock(self, name: str, key: int) -> bool:
        """Take the lock ``(name, key)``; False when another process holds it. This process may
        take it again; each take needs an ``unlock``."""

    def unlock(self, name: str, key: int) -> None:
        """Release one take of a lock this process took."""


class HeldMessages(Protocol):
    """The review queue of the classified-document guard (R-SEC-3): messages of our users held
    until an operator releases (delivers) or deletes them. Implementation: storage/sql/held.py."""

    def hold(self, blob: BlobRef, sender: str, account_id: int | None, local_ids: Sequence[int],
             remote: Sequence[str], *, reason: str, part: str, detail: str, tx_id: str | None = None) -> int:
        """Keep ``blob`` (from ``messages.put_blob``) for review; returns its id once committed."""

    def list(self) -> list[HeldMessage]:
        """Oldest first."""

    def get(self, held_id: int) -> HeldMessage:
        """Raises NotFound."""

    def remove(self, held_id: int) -> None:
        """Forget a held message (released or deleted); raises NotFound."""
class SieveScripts(Protocol):
    """Each account's Sieve scripts (RFC 5228), its forwarding, and the vacation replies sent
    (RFC 5230); tables ``sieve_scripts``, ``sieve_forwards``, ``sieve_vacation``. Names are compared exactly (RFC 5804 1.6). At most
    one script per account is active: delivery runs it. Thread-safe; blocking."""

    def list_scripts(self, account_id: int) -> list[SieveScript]:
        """By name."""

    def get_script(self, account_id: int, name: str) -> str | None: ...

    def put_script(self, account_id: int, name: str, content: str) -> None:
        """Create or replace (an active script stays active)."""

    def delete_script(self, account_id: int, name: str) -> None:
        """``NotFound``; ``Invalid`` when it is the active script (RFC 5804 2.10)."""

    def rename_script(self, account_id: int, old: str, new: str) -> None:
        """``NotFound``, ``Exists``; the active flag moves with the script."""

    def set_active(self, account_id: int, name: str | None) -> None:
        """Make ``name`` the active script (None: none active). ``NotFound``."""

    def holders(self) -> frozenset[int]:
        """The accounts that have an active script or forwarding."""

    def peek_holders(self) -> frozenset[int] | None:
        """``holders()`` as last read, when no commit could have changed it since (SQLite, in
        this process); None: call ``holders`` in a thread. Never blocks: delivery calls it on
        the event loop to skip the filters' thread hand-off for accounts without filters."""

    def active_scripts(self, account_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """account id → (name, content) of its active script, for the accounts that have one."""

    def set_forward(self, account_id: int, forward: Forward | None) -> None:
        """Forward the account's mail (None: stop forwarding)."""

    def forwards(self, account_ids: Sequence[int]) -> dict[int, Forward]:
        """account id → its forwarding, for the accounts that forward."""

    def vacation_due(self, account_id: int, sender: str, handle: str, now: float, period: float) -> bool:
        """True, and the reply recorded as sent at ``now``, unless one went to ``sender`` under
        ``handle`` less than ``period`` seconds ago (RFC 5230 4.2); one atomic step."""


class Store(Protocol):
    """The roles composed over one engine, writer thread and change notifier."""

    accounts: Accounts
    folders: Folders
    messages: Messages
    search: Search
    org: Organisation
    queue: OutboundQueue
    usage: Usage
    lifecycle: Lifecycle
    guard: LoginFailures
    announcements: Announcements
    held: HeldMessages
    locks: SessionLocks
    sieve: SieveScripts

    def close(self) -> None:
        """Stop the store's threads (writer, indexer, notifier) and close its connections."""

    def subscribe(self, listener: Callable[[list[FolderChange]], None]) -> Callable[[], None]:
        """Call ``listener`` (from the writer thread, or the notification thread on PostgreSQL)
        after each commit that changed folders. Returns an unsubscribe function. Listeners must
        be quick and must not call the store: hand over to the event loop."""
