"""Change notification between server processes that share one PostgreSQL store.

Each commit that changes folders sends ``NOTIFY mailstore_changes`` inside its transaction
(PostgreSQL delivers it only if the commit succeeds); every process LISTENs on a connection of
its own and hands what other processes changed to the same listeners as local commits, so IDLE
and other sessions see mail delivered by any process (docs/operations.md, "PostgreSQL and several processes").
A process ignores its own notifications: its listeners already heard those from the writer.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from typing import Callable

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from storage.api import FolderChange

log = logging.getLogger(__name__)
CHANNEL_PREFIX = "mailstore_"
PAYLOAD_LIMIT = 7000  # PostgreSQL's limit is 8000 bytes


def encode(origin: str, changes: list[FolderChange]) -> list[str]:
    """Payloads ``origin a:f:m a:f:m …``, newest MODSEQ per folder, split under the size limit."""
    latest: dict[tuple[int, int], FolderChange] = {}
    for change in changes:
        key = (change.account_id, change.folder_id)  # FOLDER_LIST (0) is every account's
        if key not in latest or change.highestmodseq > latest[key].highestmodseq:
            latest[key] = change
    payloads, current = [], origin
    for c in latest.values():
        item = f" {c.account_id}:{c.folder_id}:{c.highestmodseq}"
        if len(current) + len(item) > PAYLOAD_LIMIT:
            payloads.append(current)
            current = origin
        current += item
    payloads.append(current)
    return payloads


def decode(payload: str) -> tuple[str, list[FolderChange]]:
    origin, *items = payload.split(" ")
    changes = []
    for item in items:
        try:
            account_id, folder_id, modseq = (int(x) for x in item.split(":"))
        except ValueError:
            continue
        changes.append(FolderChange(account_id, folder_id, modseq))
    return origin, changes


class Notifier:
    """Sends with ``send`` (from the writer) and listens in a thread of its own."""

    def __init__(self, url: str, deliver: Callable[[list[FolderChange]], None]) -> None:
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._url = url
        self._deliver = deliver
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.channel = self._channel()
        self._thread = threading.Thread(target=self._listen, name="store-listen", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _channel(self) -> str:
        """One channel per schema: processes that share a store share it, tests in schemas don't."""
        import psycopg

        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            schema = conn.execute("SELECT current_schema()").fetchone()[0] or "public"
        return CHANNEL_PREFIX + "".join(c if c.isalnum() else "_" for c in schema.lower())[:40]

    def send(self, conn: Connection, changes: list[FolderChange]) -> None:
        for payload in encode(self.origin, changes):
            conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": self.channel, "payload": payload})

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _conninfo(self) -> str:
        url = make_url(self._url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def _listen(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo(), autocommit=True) as conn:
                    conn.execute(f"LISTEN {self.channel}")
                    self._ready.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            origin, changes = decode(note.payload)
                            if origin != self.origin and changes:
                                self._deliver(changes)
            except Exception:  # the database restarted or the network failed: listen again
                if not self._stop.is_set():
                    log.exception("change listener lost its connection; reconnecting")
                    self._stop.wait(1.0)
