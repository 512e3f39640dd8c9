"""The SQL store (SQLite and PostgreSQL): one core (engines, writer thread, change notifier,
storage/sql/core.py) and one object per role of the storage API, composed here. The roles are
the store's only surface: ``store.accounts``, ``store.folders``, ``store.messages``,
``store.search``, ``store.org``, ``store.queue``, ``store.usage``, ``store.lifecycle``, ``store.guard``, ``store.held``,
``store.locks``, ``store.sieve``
(interfaces and contracts: storage/api/roles.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from storage import api
from storage.mime.parser import DEFAULT_MAX_DEPTH
from storage.sql.accounts import SqlAccounts
from storage.sql.core import INDEX_QUIET_S, StoreCore
from storage.sql.folders import SqlFolders
from storage.sql.guard import LoginFailures
from storage.sql.held import HeldMessages
from storage.sql.lifecycle import Lifecycle
from storage.sql.locks import SessionLocks
from storage.sql.messages import SqlMessages
from storage.sql.org import Organisation
from storage.sql.queue import OutboundQueue
from storage.sql.search import SqlSearch
from storage.sql.sieve import SqlSieve
from storage.sql.usage import Usage
from storage.sql.announcements import Announcements


class SqlStore:
    """See storage.api.Store. Built once per process by the composition root (mailserver/app.py)
    or the CLI; ``close`` stops the threads and the engines."""

    def __init__(
        self,
        url: str,
        *,
        blob_dir: Path,
        inline_blob_limit: int = 256 * 1024,
        max_batch: int = 256,
        fold_diacritics: bool = True,
        index_quiet_s: float = INDEX_QUIET_S,
        recipient_cache_ttl: float = 10.0,
        mime_max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.core = StoreCore(
            url, blob_dir=blob_dir, inline_blob_limit=inline_blob_limit, max_batch=max_batch,
            fold_diacritics=fold_diacritics, index_quiet_s=index_quiet_s, recipient_cache_ttl=recipient_cache_ttl,
            mime_max_depth=mime_max_depth,
        )  # fmt: skip
        self.accounts = SqlAccounts(self.core)
        self.folders = SqlFolders(self.core)
        self.messages = SqlMessages(self.core)
        self.search = SqlSearch(self.core)
        self.org = Organisation(self.core, self.accounts)
        self.queue = OutboundQueue(self.core)
        self.usage = Usage(self.core, self.accounts, self.search)
        self.lifecycle = Lifecycle(self.core, self.accounts)
        self.guard = LoginFailures(self.core)
        self.announcements = Announcements(self.core)  # R-OPS-3 scheduled notices
        self.held = HeldMessages(self.core)
        self.sieve = SqlSieve(self.core)
        self.locks = SessionLocks(self.core.url, shared=not self.core.is_sqlite)

    @property
    def url(self) -> str:
        return self.core.url

    @property
    def is_sqlite(self) -> bool:
        return self.core.is_sqlite

    def subscribe(self, listener: Callable[[list[api.FolderChange]], None]) -> Callable[[], None]:
        return self.core.subscribe(listener)

    def close(self) -> None:
        self.usage.days.close()  # the last batch of daily counters, while the writer runs
        self.core._closing.set()  # the indexer stops at once rather than after its next pass
        self.search.close()
        self.locks.close()
        self.core.close()
