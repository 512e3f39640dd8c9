"""DSNs for recipients refused after the client was told 250 (R-QUOTA-1: no silent loss).

Two ways a recipient of an accepted message can still fail: its mailbox filled up between RCPT
and the commit (the commit's ``quota_limit`` check, ``NOQUOTA``), or the attachments are over its
own limit while other recipients take them. The sender then gets an RFC 3464 report built by the
outbound queue's ``smtp.outbound.dsn.build_dsn`` (Vietnamese, then English; machine-readable
part; the original header). It is made before the 250 is sent: a local sender's DSN is committed
into its INBOX (``quota_limit=None``, a bounce must arrive even in a full mailbox); a remote
sender's is handed to the outbound queue with a null reverse-path; without a queue, or for a
null sender (a bounce is never bounced, RFC 3464 / RFC 5321 4.5.5), it is logged and dropped.
The same path carries the "delivered" report a client asked for with NOTIFY=SUCCESS (RFC 3461).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from mailserver.policy import metrics
from smtp.outbound import dsn
from storage.api import Account, BlobRef, DeliveryTarget, EnvelopeOptions, Store

log = logging.getLogger("smtp.bounce")


class Outbound(Protocol):
    """The outbound queue (``smtp.outbound.OutboundService`` fits): durable when it returns."""

    async def enqueue(self, blob: BlobRef | str, sender: str, recipients: Sequence[str], *, tx_id: str | None = None,
                      options: EnvelopeOptions | None = None) -> int: ...


@dataclass(frozen=True, slots=True)
class Failure:
    """One recipient's report. ``diagnostic`` "552 5.2.2 Mailbox full (...)", ASCII (for a
    success report "250 2.0.0 ..."); ``address`` the RCPT address when it is not the account's."""

    account: Account
    diagnostic: str
    address: str | None = None
    orcpt: str | None = None


def build(hostname: str, sender: str, failures: Sequence[Failure], original_head: bytes, arrival: _dt.datetime,
          *, action: str = dsn.FAILED, envid: str | None = None, full_message: bytes | None = None) -> bytes:  # fmt: skip
    reports = [
        dsn.RecipientReport(f.address or f.account.address, action, f.diagnostic.split()[1], f.diagnostic, None, arrival,
                            f.orcpt)  # fmt: skip
        for f in failures
    ]
    return dsn.build_dsn(hostname=hostname, sender=sender, action=action, reports=reports,
                         original_headers=original_head, arrival=arrival, envid=envid, full_message=full_message)  # fmt: skip


async def send(
    store: Store,
    outbound: Outbound | None,
    *,
    hostname: str,
    sender: str,
    failures: Sequence[Failure],
    original_head: bytes,
    tx_id: str,
    executor: Executor | None = None,
    action: str = dsn.FAILED,
    envid: str | None = None,
    full_message: bytes | None = None,
) -> None:
    who = ", ".join(f"{f.address or f.account.address} ({f.diagnostic})" for f in failures)
    metrics.BOUNCES.labels(action).inc()
    if not sender:
        if action == dsn.FAILED:
            log.error("id=%s not delivered to %s after 250; null sender, no DSN", tx_id, who)
        return
    arrival = _dt.datetime.now(_dt.timezone.utc)
    raw = build(hostname, sender, failures, original_head, arrival, action=action, envid=envid, full_message=full_message)
    loop = asyncio.get_running_loop()

    def local() -> Any:
        owner = store.accounts.get_account(sender)
        if owner is None:
            return store.messages.put_blob(raw)
        blob = store.messages.put_blob(raw)
        outcome = store.messages.deliver(blob, [DeliveryTarget(owner.id, "INBOX", quota_limit=None)], internaldate=arrival)[0]
        return outcome

    result = await loop.run_in_executor(executor, local)
    if not isinstance(result, BlobRef):
        if result.ok:
            log.info("id=%s %s DSN to local <%s> for %s", tx_id, action, sender, who)
        else:
            log.error("id=%s DSN to local <%s> not stored (%s) for %s", tx_id, sender, result.error, who)
        return
    if outbound is None:
        log.error("id=%s DSN to remote <%s> dropped (no outbound queue) for %s", tx_id, sender, who)
        return
    queued = await outbound.enqueue(result, "", [sender], tx_id=tx_id)
    log.info("id=%s %s DSN to remote <%s> queued as %s for %s", tx_id, action, sender, queued, who)
