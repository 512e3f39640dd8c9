"""The POP3 maildrop: a session's snapshot of INBOX, and the maildrop lock.

RFC 1939: message numbers are fixed for the whole session, DELE only marks a message, and the
marked messages are removed when the client QUITs from the TRANSACTION state (the UPDATE state).
The snapshot is taken once at login with ``claim_recent=False`` so a POP3 session never steals
``\\Recent`` from IMAP sessions. Blocking methods (``load``, ``commit``) run in a worker thread.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

from storage.api import SessionLocks, Store

INBOX = "INBOX"
DELETED = frozenset({"\\Deleted"})


@dataclass(frozen=True, slots=True)
class DropMessage:
    uid: int
    size: int
    blob: str  # sha256 of the stored body


def unique_id(uidvalidity: int, uid: int) -> str:
    """The UIDL of a message: stable across sessions because UIDs never repeat within one
    UIDVALIDITY (RFC 3501), and a new UIDVALIDITY rightly makes clients fetch again. Same shape
    as Dovecot's default ``%08Xu%08Xv``; 16 characters, well inside RFC 1939's 1..70."""
    return f"{uid:08X}{uidvalidity:08X}"


class Maildrop:
    """Message numbers 1..N over the INBOX as it was at login; deletions pending until commit."""

    def __init__(self, folder_id: int, uidvalidity: int, messages: list[DropMessage]) -> None:
        self.folder_id = folder_id
        self.uidvalidity = uidvalidity
        self._messages = messages
        self._deleted: set[int] = set()  # message numbers marked by DELE

    @classmethod
    def load(cls, store: Store, account_id: int) -> Maildrop:
        """Blocking: snapshot the account's INBOX (sizes and blob ids, in UID order)."""
        folder = store.folders.get_folder(account_id, INBOX)
        view = store.messages.open_view(folder.id, claim_recent=False)
        messages: list[DropMessage] = []
        for batch in store.messages.iter_fetch(folder.id, view.uids):
            messages.extend(DropMessage(m.uid, m.size, m.blob) for m in batch)
        return cls(folder.id, view.folder.uidvalidity, messages)

    def __len__(self) -> int:
        return len(self._messages)

    def get(self, number: int) -> DropMessage | None:
        """The message with this 1-based number, or None when out of range or deleted."""
        if not 1 <= number <= len(self._messages) or number in self._deleted:
            return None
        return self._messages[number - 1]

    def exists(self, number: int) -> bool:
        return 1 <= number <= len(self._messages)

    def is_deleted(self, number: int) -> bool:
        return number in self._deleted

    def delete(self, number: int) -> None:
        """Mark for removal at QUIT; the caller has checked ``get(number)`` first."""
        self._deleted.add(number)

    def reset(self) -> None:
        self._deleted.clear()

    def live(self) -> Iterator[tuple[int, DropMessage]]:
        """(number, message) for every message not marked deleted, in order."""
        for number, message in enumerate(self._messages, 1):
            if number not in self._deleted:
                yield number, message

    def stat(self) -> tuple[int, int]:
        """(count, octets) of the messages not marked deleted."""
        count = size = 0
        for _, message in self.live():
            count += 1
            size += message.size
        return count, size

    def uidl(self, message: DropMessage) -> str:
        return unique_id(self.uidvalidity, message.uid)

    @property
    def pending_deletions(self) -> int:
        return len(self._deleted)

    def commit(self, store: Store) -> int:
        """Blocking: remove the messages marked by DELE. Returns how many were removed.

        Only this session's UIDs are flagged and expunged, so messages another client marked
        \\Deleted stay until that client expunges them. Each call returns after its durable
        commit; if the expunge fails the messages keep \\Deleted and the error propagates.
        """
        uids = sorted(self._messages[n - 1].uid for n in self._deleted)
        if not uids:
            return 0
        store.messages.store_flags(self.folder_id, uids, "add", DELETED)
        return len(store.messages.expunge(self.folder_id, uids))


class MaildropLocks:
    """RFC 1939 exclusive-access lock per account, shared by the pop3 and pop3s listeners and,
    through ``shared`` (the store's ``locks``), by every server process on the store.

    ``acquire`` may block on the database: call it from a worker thread. ``release`` forgets the
    lock in this process at once (so a client that reconnects right after QUIT is not told the
    maildrop is in use) and returns the blocking part, to be run in a worker thread, or None.
    """

    NAME = "pop3-maildrop"

    def __init__(self, shared: SessionLocks | None = None) -> None:
        self._shared = shared
        self._held: set[int] = set()
        self._mutex = threading.Lock()

    def acquire(self, account_id: int) -> bool:
        with self._mutex:
            if account_id in self._held:
                return False
            self._held.add(account_id)
        try:
            taken = self._shared is None or self._shared.try_lock(self.NAME, account_id)
        except BaseException:
            self._forget(account_id)
            raise
        if not taken:
            self._forget(account_id)
        return taken

    def release(self, account_id: int) -> Callable[[], None] | None:
        self._forget(account_id)
        if self._shared is None:
            return None
        return functools.partial(self._shared.unlock, self.NAME, account_id)

    def held(self, account_id: int) -> bool:
        return account_id in self._held

    def _forget(self, account_id: int) -> None:
        with self._mutex:
            self._held.discard(account_id)
