"""Recently looked-up recipients, so SMTP RCPT needs no thread hand-off for an address it knows.

Why: the hand-off to a worker thread and back cost the SMTP server ~0.25 ms of CPU per recipient
(thread wake-ups and GIL exchanges around a 40 µs query), a fifth of all its work per message
(bench/smtp_ingest.py). Dovecot's auth cache and Postfix's proxymap keep such answers for the
same reason.

No answer is served that a commit could have changed. The SQLite store (the only one that
uses this cache; PostgreSQL serves several processes) keeps it so:
- ``peek_account`` serves an entry only while SQLite's ``data_version``, read on a connection
  kept for the purpose, is still the value at which the writer last vouched for the cache: any
  commit since, by this process or another, sends the look-up to the database until then;
- after each commit, before its callers are released, the writer adds the sizes of its
  deliveries to the cached usage, clears the cache for any other change of its own (an account,
  an address, a folder, a flag: whatever it was), clears it as well when ``data_version`` on its
  own connection shows a commit by another connection (an operator's ``mailserver`` command),
  and vouches anew; every 50 ms when idle it does the last two;
- an entry lasts ``ttl`` seconds at most.
The commit checks state and quota again in any case (R-QUOTA-1).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable

from storage.api import Account

MAX_ENTRIES = 10_000  # cleared when full: a burst of new recipients starts a fresh cache


class RecipientCache:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[Account, float]] = {}
        self._lock = threading.Lock()  # writers; get() reads one dict entry without it
        #: bumped by every change: a look-up that began before it must not store its answer
        self.generation = 0
        #: bumped by every clear (a change other than deliveries): other caches of this process
        #: that are valid only until such a change compare it (store.sieve.peek_holders)
        self.clears = 0

    def get(self, address: str) -> Account | None:
        """The cached account of a normalised address; None when unknown or expired."""
        entry = self._entries.get(address)
        if entry is None or entry[1] <= self._clock():
            return None
        return entry[0]

    def put(self, address: str, account: Account, generation: int) -> None:
        """Remember ``account``, read from the store since ``generation`` was current."""
        with self._lock:
            if generation != self.generation:
                return  # something changed while it was read: it may be the old answer
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[address] = (account, self._clock() + self.ttl)

    def charge(self, charges: dict[int, tuple[int, int]]) -> None:
        """Committed deliveries: account id → (bytes, messages) added to its usage."""
        with self._lock:
            self.generation += 1
            for address, (account, expires) in list(self._entries.items()):
                added = charges.get(account.id)
                if added is not None:
                    updated = dataclasses.replace(
                        account, used_bytes=account.used_bytes + added[0], used_messages=account.used_messages + added[1]
                    )
                    self._entries[address] = (updated, expires)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self.clears += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
