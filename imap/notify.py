"""Fan-out of store commits to the sessions that have the changed folder selected.

One ``store.subscribe`` per process. The store calls the listener from its writer (or
notification) thread; it only hands the list to the reactor. There, the sessions watching the
folder are grouped by what they already know (HIGHESTMODSEQ, UIDNEXT): one ``store.changes``
call per group, in a thread, serves every session of the group, so a thousand clients idling
on one folder cost one query per commit, not a thousand.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from twisted.internet import defer
from twisted.internet.threads import deferToThread

log = logging.getLogger(__name__)


class ChangeHub:
    def __init__(self, reactor, store) -> None:
        self.reactor = reactor
        self.store = store
        self._watchers: dict[int, set] = defaultdict(set)
        self._inflight: set[int] = set()
        self._again: dict[int, int] = {}
        #: newest HIGHESTMODSEQ announced for each folder since start: a session that starts
        #: watching after a commit it has not seen is brought up to date at once (``watch``)
        self.latest: dict[int, int] = {}
        self._unsubscribe = store.subscribe(self._from_store_thread)

    def _from_store_thread(self, changes) -> None:
        self.reactor.callFromThread(self._dispatch, changes)

    def _dispatch(self, changes) -> None:
        for change in changes:
            if change.highestmodseq > self.latest.get(change.folder_id, 0):
                self.latest[change.folder_id] = change.highestmodseq
            if change.folder_id in self._watchers:
                self.refresh(change.folder_id, change.highestmodseq)

    def refresh(self, folder_id: int, highestmodseq: int) -> None:
        """Bring every session watching ``folder_id`` up to ``highestmodseq``."""
        if folder_id in self._inflight:
            self._again[folder_id] = max(highestmodseq, self._again.get(folder_id, 0))
            return
        groups: dict[tuple[int, int], list] = defaultdict(list)
        for session in self._watchers.get(folder_id, ()):
            sv = session.selected
            if sv is not None and sv.folder_id == folder_id and sv.highestmodseq < highestmodseq:
                groups[(sv.highestmodseq, sv.uidnext)].append((session, sv))
        if not groups:
            return
        self._inflight.add(folder_id)
        calls = [
            deferToThread(self.store.changes, folder_id, since, uidnext).addCallback(self._hand_out, members)
            for (since, uidnext), members in groups.items()
        ]
        done = defer.DeferredList(calls, consumeErrors=True)
        done.addCallback(self._refreshed, folder_id)

    @staticmethod
    def _hand_out(changes, members) -> None:
        for session, sv in members:
            session.changes_arrived(sv, changes)

    def _refreshed(self, results, folder_id: int) -> None:
        self._inflight.discard(folder_id)
        for ok, value in results:
            if not ok:
                log.error("imap change poll failed: %s", value.getErrorMessage())
        if folder_id in self._again:
            self.refresh(folder_id, self._again.pop(folder_id))

    def watch(self, folder_id: int, session) -> None:
        """From now on ``session`` hears of every commit to the folder. A commit announced
        between its snapshot (``open_view``) and this call is fetched now, so no poll is needed
        when the session starts to IDLE."""
        self._watchers[folder_id].add(session)
        sv = session.selected
        newest = self.latest.get(folder_id, 0)
        if sv is not None and sv.folder_id == folder_id and newest > sv.highestmodseq:
            self.refresh(folder_id, newest)

    def unwatch(self, folder_id: int, session) -> None:
        sessions = self._watchers.get(folder_id)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._watchers[folder_id]

    def close(self) -> None:
        self._unsubscribe()
