"""Fan-out of store commits to the sessions that have the changed folder selected.

One ``store.subscribe`` per process. The store calls the listener from its writer (or
notification) thread; it only hands the list to the reactor. There, the sessions watching the
folder are grouped by what they already know (HIGHESTMODSEQ, UIDNEXT): one ``store.messages.changes``
call per group, in a thread, serves every session of the group, so a thousand clients idling
on one folder cost one query per commit, not a thousand. A delivery needs no query at all: its
FolderChange carries the new message (``since``/``new``), which is all a session that was up to
date before the commit lacks — a thousand members of a group, each in IDLE on an INBOX of its
own, hear of a group message without a thousand store round trips.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from twisted.internet.threads import deferToThread
from twisted.python import failure

from storage.api import Changes

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
        #: sessions with NOTIFY filters on an account's folders (imap/op/notify.py), by account id
        self._accounts: dict[int, set] = defaultdict(set)
        self._unsubscribe = store.subscribe(self._from_store_thread)

    def _from_store_thread(self, changes) -> None:
        self.reactor.callFromThread(self._dispatch, changes)

    def _dispatch(self, changes) -> None:
        """A commit's changes, on the reactor thread. Where the commit said exactly what it
        added (``FolderChange.since``/``new``: a delivery), the sessions that knew the folder
        just before it are told at once, from memory; any other session, and any other kind of
        change, is brought up to date by asking the store (``refresh_many``)."""
        wanted: dict[int, int] = {}
        #: folder → [since, highestmodseq, uidnext, new messages]: consecutive full changes
        chains: dict[int, list | None] = {}
        latest = self.latest
        for change in changes:
            folder_id, modseq = change.folder_id, change.highestmodseq
            if modseq > latest.get(folder_id, 0):
                latest[folder_id] = modseq
            for session in self._accounts.get(change.account_id, ()):
                try:
                    session.notify.folder_changed(folder_id)
                except Exception:  # noqa: BLE001 (one session must not keep the news from the others)
                    log.exception("imap: NOTIFY of a folder change failed")
            if folder_id not in self._watchers:
                continue
            chain = chains.get(folder_id, False)
            if change.since and change.new and chain is False:
                chains[folder_id] = [change.since, modseq, change.new[-1].uid + 1, list(change.new)]
            elif change.since and change.new and chain and chain[1] == change.since:
                chain[1], chain[2] = modseq, change.new[-1].uid + 1
                chain[3].extend(change.new)
            else:  # not described in full, or not following on: ask the store
                chains[folder_id] = None
                wanted[folder_id] = max(modseq, wanted.get(folder_id, 0))
        claimants: list = []
        for folder_id, chain in chains.items():
            if chain is None:
                continue
            since, modseq, uidnext, new = chain
            if folder_id in self._inflight:  # a query is on its way: ask again after it (refresh_many)
                wanted[folder_id] = modseq
                continue
            served = Changes(highestmodseq=modseq, uidnext=uidnext, new=new, updated=[], expunged=[])
            for session in list(self._watchers[folder_id]):
                sv = session.selected
                if sv is None or sv.folder_id != folder_id:
                    continue
                if sv.highestmodseq == since and sv.uidnext <= new[0].uid:
                    try:
                        session.changes_arrived(sv, served)
                    except Exception:  # noqa: BLE001 (one session must not keep the news from the others)
                        log.exception("imap: handing changes to a session failed")
                    if sv.unclaimed is not None:
                        claimants.append(session)
                elif sv.highestmodseq < modseq:
                    wanted[folder_id] = modseq  # behind by more than this commit
        if claimants:
            self.claim(claimants)
        if wanted:
            self.refresh_many(list(wanted.items()))

    def refresh(self, folder_id: int, highestmodseq: int) -> None:
        """Bring every session watching ``folder_id`` up to ``highestmodseq``."""
        self.refresh_many([(folder_id, highestmodseq)])

    def refresh_many(self, wanted) -> None:
        """One thread job reads the changes of every folder of a commit (a delivery to fifty
        accounts is fifty folders), and every session is told in one reactor turn, before the
        reactor goes on to what the first clients told answer (DONE, FETCH)."""
        jobs = []
        for folder_id, highestmodseq in wanted:
            if folder_id in self._inflight:
                self._again[folder_id] = max(highestmodseq, self._again.get(folder_id, 0))
                continue
            groups: dict[tuple[int, int], list] = defaultdict(list)
            for session in self._watchers.get(folder_id, ()):
                sv = session.selected
                if sv is not None and sv.folder_id == folder_id and sv.highestmodseq < highestmodseq:
                    groups[(sv.highestmodseq, sv.uidnext)].append((session, sv))
            if groups:
                self._inflight.add(folder_id)
                jobs.extend((folder_id, since, uidnext, members) for (since, uidnext), members in groups.items())
        if jobs:
            d = deferToThread(self._load, [(f, since, uidnext) for f, since, uidnext, _ in jobs])
            d.addBoth(self._loaded, jobs)

    def _load(self, keys) -> list:
        """In a thread: ``store.messages.changes`` for each (folder, since, uidnext); an error stays with its folder."""
        out = []
        for folder_id, since, uidnext in keys:
            try:
                out.append(self.store.messages.changes(folder_id, since, uidnext))
            except Exception as e:  # noqa: BLE001 (one folder's failure must not starve the others)
                out.append(e)
        return out

    def _loaded(self, results, jobs) -> None:
        if isinstance(results, failure.Failure):  # the thread job itself failed
            results = [results] * len(jobs)
        folders, claimants = [], []
        for (folder_id, _since, _uidnext, members), changes in zip(jobs, results):
            folders.append(folder_id)
            if isinstance(changes, (Exception, failure.Failure)):
                log.error("imap change poll failed for folder %d: %s", folder_id, changes)
                continue
            for session, sv in members:
                try:
                    session.changes_arrived(sv, changes)
                except Exception:  # noqa: BLE001 (one session must not keep the news from the others)
                    log.exception("imap: handing changes to a session failed")
                if sv.unclaimed is not None:
                    claimants.append(session)
        if claimants:
            self.claim(claimants)
        again = []
        for folder_id in dict.fromkeys(folders):
            self._inflight.discard(folder_id)
            if folder_id in self._again:
                again.append((folder_id, self._again.pop(folder_id)))
        if again:
            self.refresh_many(again)

    def claim(self, sessions):
        """Claim the \\Recent arrivals of these sessions' read-write views, in one writer
        transaction; each view learns which of them are its own. A Deferred (None when
        there was nothing to claim)."""
        claims = []
        for session in sessions:
            sv = session.selected
            claim = sv.take_claim() if sv is not None else None
            if claim is not None:
                claims.append((session, sv, claim[1]))
        if not claims:
            return None
        d = deferToThread(self.store.messages.claim_recent, [(sv.folder_id, below) for _, sv, below in claims])

        def settled(result):
            # Cleared first: what ``updates_waiting`` starts may wait for a claim on its way.
            for _session, sv, _below in claims:
                if sv.claiming is d:
                    sv.claiming = None
            return result

        def done(floors):
            for (session, sv, below), floor in zip(claims, floors):
                sv.claimed(floor, below)
                if session.selected is sv:
                    session.updates_waiting()

        def failed(f):
            log.error("imap: claiming \\Recent failed: %s", f.value)

        d.addBoth(settled)
        d.addCallbacks(done, failed)
        for _session, sv, _below in claims:
            sv.claiming = d
        return d

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

    def watch_account(self, account_id: int, session) -> None:
        """``session.notify`` hears of every commit to the account's folders and folder list."""
        self._accounts[account_id].add(session)

    def unwatch_account(self, account_id: int, session) -> None:
        sessions = self._accounts.get(account_id)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._accounts[account_id]

    def close(self) -> None:
        self._unsubscribe()
