"""The storage API: the only way the front ends (smtp/, imap/, pop3/, the CLI) touch the mail store.

Value types (frozen dataclasses, enums, constants, pure helpers) live in the modules of this
package by subject (``types``: accounts, folders, messages; ``org``; ``queue``; ``usage``;
``lifecycle``; ``sessions``; ``stats``) and one interface per role in ``roles``; everything is
importable from ``storage.api`` itself. The implementation (storage/sql/) composes one object
per role into the store: ``store.accounts``, ``store.folders``, ``store.messages``,
``store.search``, ``store.org``, ``store.queue``, ``store.usage``, ``store.lifecycle``.

Contract (see docs/architecture.md, "Storage"):
- Synchronous and framework-free. Every method is thread-safe; front ends call it off the event
  loop (``await loop.run_in_executor(None, store.messages.deliver, ...)`` or ``deferToThread``).
  The one exception is ``deliver_soon``, which never blocks and returns a future.
- Values in and out are frozen dataclasses, never ORM rows.
- Writes go through one writer thread per process that batches concurrent write jobs into one
  transaction (group commit). A write method returns only after its transaction is durably
  committed (SQLite ``synchronous=FULL``; blob files fsynced before their rows commit). That is
  what lets SMTP say 250 and IMAP say OK (docs/architecture.md, "The writer and group commit").
- Every change to a folder bumps its HIGHESTMODSEQ. New messages have ``uid >= old uidnext``,
  flag changes carry their ``modseq``, expunges are logged with the modseq that removed them.
  ``Messages.changes()`` reads exactly that, and ``Store.subscribe()`` tells listeners after each
  commit which folders changed (IDLE, other sessions' updates).
- Quota usage per account is updated in the same transaction as the messages it counts.

Folder names are NFC Unicode with ``/`` as the hierarchy delimiter; INBOX is always "INBOX".
"""

from storage.api.types import (
    AccountKind,
    AccountState,
    LOGIN_STATES,
    RECEIVE_STATES,
    SYSTEM_FLAGS,
    DEFAULT_FOLDERS,
    Account,
    Folder,
    FolderStatus,
    BlobRef,
    NewMessage,
    email_id,
    email_id_prefix,
    MessageInfo,
    RENDERED_KINDS,
    ROW_UID,
    ROW_MODSEQ,
    ROW_FLAGS,
    ROW_DATE,
    ROW_SIZE,
    ROW_BLOB,
    ROW_REF,
    ROW_ENVELOPE,
    ROW_BODY,
    ROW_BODYSTRUCTURE,
    FolderView,
    Changes,
    DeliveryTarget,
    DeliveryOutcome,
    FOLDER_LIST,
    FolderChange,
    FlagUpdate,
    StoreResult,
    CopyResult,
)
from storage.api.org import (
    SHARED_PREFIX,
    OPERATOR,
    Right,
    ALL_RIGHTS,
    SendPolicy,
    parse_rights,
    format_rights,
    Unit,
    Delegation,
    SharedMailbox,
    Group,
    Profile,
    NewPerson,
    AuditEntry,
    DirectoryRow,
    person_key,
)
from storage.api.held import (
    STAMPED,
    UNREADABLE,
    HeldMessage,
)
from storage.api.queue import (
    QUEUED,
    BOUNCE,
    FAILED,
    QueuedRecipient,
    QueuedMessage,
    Claim,
    Outcome,
    EnvelopeOptions,
    RecipientDsn,
    StsPolicy,
    TlsCount,
)
from storage.api.announcements import Scheduled
from storage.api.usage import (
    DAY_FACTS,
    DayFacts,
    Drift,
    Expired,
)
from storage.api.lifecycle import (
    JOB,
    PASSWORD_EXPIRED,
    Record,
)
from storage.api.sessions import (
    why_lapsed,
)
from storage.api.sieve import (
    Forward,
    SieveScript,
)
from storage.api.stats import (
    StoreStats,
)
from storage.api.roles import (
    Accounts,
    Folders,
    HeldMessages,
    Lifecycle,
    LoginFailures,
    Messages,
    Organisation,
    OutboundQueue,
    Search,
    SessionLocks,
    SieveScripts,
    Store,
    Usage,
)
