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


def prune_counters(store: Any, keep_years: int, today: dt.date | None = None) -> int:
    """Daily counters older than ``keep_years`` years go (R-OPS-2 keeps them that long)."""
    today = today or dt.date.today()
    try:
        limit = today.replace(year=today.year - keep_years)
    except ValueError:  # 29 February
        limit = today.replace(year=today.year - keep_years, day=28)
    return store.usage.prune_days(limit)


def start_announcements(reactor: Any, store: Any, keep_years: int = 5):
    """A LoopingCall (returned; stop it at shutdown) that delivers due announcements in a thread,
    and once a day prunes the daily counters of the reports."""
    from twisted.internet import task
    from twisted.internet.threads import deferToThread

    pruned = [None]

    def housekeeping():
        run_due(store)
        if pruned[0] != dt.date.today():
            pruned[0] = dt.date.today()
            prune_counters(store, keep_years)

    def tick():
        return deferToThread(housekeeping).addErrback(lambda f: log.error("announcements: %s", f.getErrorMessage()))

    call = task.LoopingCall(tick)
    call.clock = reactor
    call.start(CHECK_EVERY, now=True)
    return call
