"""What SELECT reads of a folder, kept between SELECTs while the folder does not change.

Reading the UID and flags of every message cost a SELECT on a 10,000-message folder most of its
10 ms (a row lookup per message); Dovecot answers from its index file in under one. Every change
to a folder's messages (delivery, APPEND, COPY/MOVE in, STORE, EXPUNGE) raises its HIGHESTMODSEQ
or UIDNEXT in the same transaction, so a snapshot taken at (UIDVALIDITY, HIGHESTMODSEQ, UIDNEXT)
is exact for as long as the folder row still shows those three; a process that did not make the
change (another server on the same PostgreSQL) sees it by the same test. Kept per process,
bounded by the number of UIDs held.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass

#: UIDs kept across all folders (8 bytes each: 32 MB)
MAX_UIDS = 4_000_000
#: folders smaller than this are read again each time (cheap, and not worth the memory churn)
MIN_UIDS = 256


@dataclass(frozen=True, slots=True)
class Snapshot:
    key: tuple[int, int, int]  # (uidvalidity, highestmodseq, uidnext)
    uids: array  # ascending
    unseen: int
    first_unseen: int | None
    keywords: tuple[str, ...]


class FolderSnapshots:
    def __init__(self, max_uids: int = MAX_UIDS) -> None:
        self._lock = threading.Lock()
        self._by_folder: OrderedDict[int, Snapshot] = OrderedDict()
        self._held = 0
        self._max = max_uids

    def get(self, folder_id: int, key: tuple[int, int, int]) -> Snapshot | None:
        with self._lock:
            snap = self._by_folder.get(folder_id)
            if snap is None or snap.key != key:
                return None
            self._by_folder.move_to_end(folder_id)
            return snap

    def put(self, folder_id: int, snap: Snapshot) -> None:
        if len(snap.uids) < MIN_UIDS or len(snap.uids) > self._max:
            return
        with self._lock:
            old = self._by_folder.pop(folder_id, None)
            if old is not None:
                self._held -= len(old.uids)
            if old is not None and old.key[1:] > snap.key[1:] and old.key[0] == snap.key[0]:
                snap = old  # a slower reader must not replace a newer snapshot with an older one
            self._by_folder[folder_id] = snap
            self._held += len(snap.uids)
            while self._held > self._max:
                _, dropped = self._by_folder.popitem(last=False)
                self._held -= len(dropped.uids)
