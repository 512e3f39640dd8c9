"""Scheduled announcements (``announce --at``): the server delivers due ones every
CHECK_EVERY seconds (each claimed by exactly one process, storage/sql/announcements.py)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from mailserver.announcements.deliver import deliver, recipients

log = logging.getLogger(__name__)
CHECK_EVERY = 30.0


def run_due(store: Any, now: dt.datetime | None = None) -> list[tuple[int, int]]:
    """Deliver every due announcement (blocking); [(id, mailboxes)]."""
    done = []
    for item in store.announcements.claim_due(now or dt.datetime.now(dt.UTC)):
        try:
            delivered, _sha = deliver(store, item.raw, recipients(store, item.unit_code))
        except LookupError as e:  # the unit was removed since
            log.error("announcement %d not delivered: %s", item.id, e)
            delivered = 0
        store.announcements.finish(item.id, delivered)
        log.info("announcement %d %r delivered to %d mailbox(es)", item.id, item.subject, delivered)
        done.append((item.id, delivered))
    return done


def start_announcements(reactor: Any, store: Any):
    """A LoopingCall (returned; stop it at shutdown) that delivers due announcements in a thread."""
    from twisted.internet import task
    from twisted.internet.threads import deferToThread

    def tick():
        return deferToThread(run_due, store).addErrback(lambda f: log.error("announcements: %s", f.getErrorMessage()))

    call = task.LoopingCall(tick)
    call.clock = reactor
    call.start(CHECK_EVERY, now=True)
    return call
