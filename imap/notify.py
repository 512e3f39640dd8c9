"""Fan-out of store commits to the sessions that have the changed folder selected.

One ``store.subscribe`` per process. The store calls the listener from its writer (or
notification) thread; it only hands the list to the reactor, where each watching session is told
the folder's new HIGHESTMODSEQ and fetches what changed itself (``store.changes`` in a thread).
"""

from __future__ import annotations

from collections import defaultdict


class ChangeHub:
    def __init__(self, reactor, store) -> None:
        self.reactor = reactor
        self._watchers: dict[int, set] = defaultdict(set)
        self._unsubscribe = store.subscribe(self._from_store_thread)

    def _from_store_thread(self, changes) -> None:
        self.reactor.callFromThread(self._dispatch, changes)

    def _dispatch(self, changes) -> None:
        for change in changes:
            for session in list(self._watchers.get(change.folder_id, ())):
                session.folder_changed(change.highestmodseq)

    def watch(self, folder_id: int, session) -> None:
        self._watchers[folder_id].add(session)

    def unwatch(self, folder_id: int, session) -> None:
        sessions = self._watchers.get(folder_id)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._watchers[folder_id]

    def close(self) -> None:
        self._unsubscribe()
