"""Commit a received message to the store: one blob with our trace headers, one row per account.

Runs after the DATA pipeline passed. ``put_blob`` (hash, MIME parse, fsync of large bodies) and
``deliver`` (one durable group commit) both run in worker threads; the caller replies 250 only
after ``deliver`` returned (issue 2 "Durability").
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from concurrent.futures import Executor
from typing import BinaryIO, Sequence

from smtp import replies
from storage.api import Account, BlobRef, DeliveryOutcome, DeliveryTarget, Store
from storage.errors import ErrorKind, StoreError

log = logging.getLogger("smtp.delivery")


def on_partial_failure(tx_id: str, sender: str, failed: Sequence[tuple[Account, DeliveryOutcome]]) -> None:
    """Some recipients failed inside the commit (quota raced since RCPT) while others got the
    message: the client gets 250 for the transaction, so these recipients are owed a DSN to the
    sender (issue 5 replaces the body of this function with the bounce; R-QUOTA-1). For now the
    loss is logged at error level so operators see every one."""
    for account, outcome in failed:
        log.error(
            "id=%s delivery failed after 250 sender=<%s> rcpt=%s error=%s",
            tx_id, sender, account.address, outcome.error,
        )


def targets_for(accounts: Sequence[Account]) -> list[DeliveryTarget]:
    """One target per distinct account (two addresses of one account get one copy)."""
    seen: dict[int, DeliveryTarget] = {}
    for account in accounts:
        seen.setdefault(account.id, DeliveryTarget(account.id, "INBOX", quota_limit=None))
    return list(seen.values())


async def deliver(
    store: Store,
    spool: BinaryIO,
    prefix: bytes,
    accounts: Sequence[Account],
    *,
    tx_id: str,
    sender: str,
    executor: Executor | None = None,
) -> str:
    """Store the message for ``accounts``; returns the reply for the DATA command."""
    targets = targets_for(accounts)
    now = _dt.datetime.now(_dt.timezone.utc)

    def store_it() -> tuple[BlobRef, list[DeliveryOutcome]]:  # one thread hand-off for both calls
        blob = store.put_blob(spool, prefix=prefix)
        return blob, store.deliver(blob, targets, internaldate=now)

    try:
        blob, outcomes = await asyncio.get_running_loop().run_in_executor(executor, store_it)
    except StoreError as e:
        log.warning("id=%s store refused the message: %s %s", tx_id, e.kind, e.detail)
        return replies.for_error(e.kind, "DATA")
    by_id = {a.id: a for a in accounts}
    failed = [(by_id[o.account_id], o) for o in outcomes if not o.ok]
    if failed and len(failed) == len(outcomes):
        kind = failed[0][1].error or ErrorKind.TEMP
        log.info("id=%s every recipient failed: %s", tx_id, kind)
        return replies.for_error(kind, "DATA")
    if failed:
        on_partial_failure(tx_id, sender, failed)
    log.info("id=%s delivered size=%d rcpts=%d", tx_id, blob.size, len(outcomes) - len(failed))
    return replies.S250_QUEUED.format(id=tx_id)
