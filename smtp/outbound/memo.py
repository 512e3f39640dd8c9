"""Made once, shared by threads: the DKIM signature of a message going to several destinations.

A message to recipients at three domains is three transactions, prepared in three threads at
about the same time; its signature fields are the same bytes for all three, so the first thread
makes them and the others wait for that result instead of signing again. Entries are few and
small (the header fields, not the message) and expire, so a retry hours later is signed anew.
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
import time
from typing import Callable, Hashable


class OnceCache:
    def __init__(self, size: int = 512, ttl: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.ttl = ttl
        self.clock = clock
        self._entries: collections.OrderedDict[Hashable, tuple[float, concurrent.futures.Future]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], bytes]) -> bytes:
        """``make()``'s result for ``key``: made by the first caller, awaited by the others.
        A failure is not kept: the next caller tries again."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry[0] < self.ttl:
                self._entries.move_to_end(key)
                future, mine = entry[1], False
            else:
                future, mine = concurrent.futures.Future(), True
                self._entries[key] = (now, future)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        if not mine:
            return future.result()
        try:
            value = make()
        except BaseException as exc:
            with self._lock:
                if self._entries.get(key, (0, None))[1] is future:
                    del self._entries[key]
            future.set_exception(exc)
            raise
        future.set_result(value)
        return value
