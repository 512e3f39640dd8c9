"""ENVELOPE, BODY and BODYSTRUCTURE rendered ahead of the first FETCH, while the store is quiet.

Why: the first FETCH 1:* (ENVELOPE) over 10,000 delivered messages rendered them all (~0.4 s,
against ~0.03 s once kept in fetch_cache). Delivery itself renders nothing, and this costs a
busy ingest nothing either: the store's commit listener only notes the time (on the writer
thread), and a thread of its own renders once no commit came for ``quiet`` seconds
(``limits.imap_prerender_quiet``, 5 by default; at start-up at once), ``batch`` messages at a
time, looking again for quiet between batches (10,000 messages: about a second of CPU). It keeps the renderings through
the writer like a FETCH does. A message a client asks for before then is rendered by the FETCH
as before. Kept renderings are checked against the body and RENDER_VERSION when read, so a
late or duplicate one is harmless.
"""

from __future__ import annotations

import logging
import threading
import time

from imap.bodystructure import render_body
from imap.envelope import render_envelope
from imap.fetchrender import RENDER_VERSION

log = logging.getLogger(__name__)


class Prerenderer:
    def __init__(self, store, *, quiet: float = 5.0, batch: int = 500) -> None:
        self.store = store
        self.quiet = quiet
        self.batch = batch
        self.after = 0  # message key up to which everything was looked at
        self._last_commit = 0.0
        self._work = threading.Event()
        self._stopping = threading.Event()
        self._unsubscribe = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._unsubscribe = self.store.subscribe(self._committed)
        self._work.set()  # what was delivered while the server was down
        self._thread = threading.Thread(target=self._run, name="imap-prerender", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._work.set()
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _committed(self, _changes) -> None:
        """On the writer thread: note the time and nothing else."""
        self._last_commit = time.monotonic()
        self._work.set()

    def _run(self) -> None:
        while True:
            self._work.wait()
            if not self._wait_for_quiet():
                return
            self._work.clear()
            try:
                more = self.render_some()
            except Exception:  # a cache; the store may also be closing under us
                if self._stopping.is_set():
                    return
                log.warning("renderings not prepared ahead", exc_info=True)
                more = False
                self._stopping.wait(self.quiet)
            if more:
                self._work.set()

    def _wait_for_quiet(self) -> bool:
        while not self._stopping.is_set():
            idle = time.monotonic() - self._last_commit
            if idle >= self.quiet:
                return True
            self._stopping.wait(self.quiet - idle)
        return False

    def render_some(self) -> bool:
        """Render and keep one batch; True when there may be more."""
        found, after = self.store.messages.unrendered(RENDER_VERSION, self.after, self.batch)
        done: dict[str, tuple] = {}  # a fan-out's copies share one body
        items = []
        for ref, sha, envelope, structure in found:
            r = done.get(sha)
            if r is None:
                r = done[sha] = (render_envelope(envelope), render_body(structure, False), render_body(structure, True))
            items.append((ref, sha, *r))
        if items:
            self.store.messages.put_rendered(RENDER_VERSION, items, wait=True)
        self.after = after
        return len(found) == self.batch
