"""Commit a received message: one blob with our trace headers, one row per local account, and
the remote recipients handed to the outbound queue.

Runs after the DATA pipeline passed. ``put_blob`` (hash, MIME parse, fsync of large bodies) runs
in a worker thread unless the message is small, ``deliver_soon`` queues one durable group commit
whose future is awaited, ``outbound.enqueue`` commits the queue rows; the caller replies 250 only
after all of them completed (an acknowledged message is durable). Each
target carries its mailbox limit (``quota.delivery_limit``), checked again inside the commit, so
concurrent deliveries never push a mailbox over it (R-QUOTA-1). Recipients that fail after the
others succeeded are owed a DSN (smtp/bounce.py), sent before the 250, unless their NOTIFY
said otherwise; those whose NOTIFY asked for SUCCESS get a "delivered" report (RFC 3461).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Callable, Mapping, Sequence

from mailserver.policy import metrics
from quota import Decision
from smtp import bounce, replies
from smtp.dsn_params import wants
from smtp.outbound import dsn
from smtp.quota import dsn_diagnostic
from storage.api import Account, BlobRef, DeliveryOutcome, DeliveryTarget, EnvelopeOptions, Store
from storage.errors import ErrorKind, StoreError, Temp

if TYPE_CHECKING:
    from smtp.sieve_delivery import Plan, SieveDelivery

log = logging.getLogger("smtp.delivery")

#: Messages up to this size (and stored inline) are hashed and parsed on the event loop: for the
#: typical letter that is a fraction of a millisecond, less than the hand-off to a worker thread
#: and back costs under load; larger ones are parsed in a worker so the loop never stalls.
PARSE_ON_LOOP = 64 * 1024


@dataclass(frozen=True)
class Message:
    """What to commit: ``prefix`` (our trace headers, perhaps a cleaned header section) followed
    by the spool from its current position."""

    spool: BinaryIO
    prefix: bytes
    size: int  # bytes in the spool (without prefix)
    accounts: Sequence[Account]  # local recipients' accounts, in RCPT order
    remote: Sequence[str] = ()  # remote recipients (submission only)
    refused: Mapping[int, Decision] = field(default_factory=dict)  # account id → why (attachments)
    parsed: dict | None = None  # store.messages.parse_message of the spool from 0, when the checks parsed it
    folder: str = "INBOX"  # the local accounts' folder (Junk: smtp/filters); INBOX when they have no such folder
    options: EnvelopeOptions | None = None  # RFC 3461 DSN parameters, RFC 8689 REQUIRETLS
    rcpt_of: Mapping[int, str] = field(default_factory=dict)  # account id → RCPT address it came from


def targets_for(accounts: Sequence[Account], limit_for: Callable[[Account], int | None] | None = None,
                folder: str = "INBOX", plan: Plan | None = None) -> list[DeliveryTarget]:
    """One target per distinct account (two addresses of one account get one copy); an account
    whose Sieve script decided gets its folders and flags (none: discarded, rejected, redirected)."""
    seen: dict[int, list[DeliveryTarget]] = {}
    for account in accounts:
        if account.id not in seen:
            limit = limit_for(account) if limit_for is not None else None
            decided = plan.targets(account, folder, limit) if plan is not None else None
            seen[account.id] = decided if decided is not None else [DeliveryTarget(account.id, folder, quota_limit=limit)]
    return [t for targets in seen.values() for t in targets]


async def deliver(
    store: Store,
    message: Message,
    *,
    tx_id: str,
    sender: str,
    hostname: str,
    executor: Executor | None = None,
    limit_for: Callable[[Account], int | None] | None = None,
    limit_blocks: bool = False,
    outbound: bounce.Outbound | None = None,
    sieve: SieveDelivery | None = None,
) -> str:
    """Store the message for its local accounts, queue it for its remote recipients; returns the
    reply for the DATA command. ``sieve``: run the accounts' filters (smtp/sieve_delivery.py)."""
    wanted = [a for a in message.accounts if a.id not in message.refused]
    now = _dt.datetime.now(_dt.timezone.utc)
    plan, start = None, message.spool.tell()

    def prepare() -> tuple[list[DeliveryTarget], BlobRef]:
        return targets_for(wanted, limit_for, message.folder, plan), store.messages.put_blob(message.spool, prefix=message.prefix, parsed=message.parsed)

    loop = asyncio.get_running_loop()
    try:
        if sieve is not None and wanted and sieve.needed(store, wanted):
            plan = await loop.run_in_executor(executor, sieve.plan, store, wanted, message.spool, message.prefix,
                                              message.size, sender)  # fmt: skip
            plan.junk = message.folder != "INBOX"
            if not message.remote and not message.refused and plan.all_rejected(wanted):
                log.info("id=%s rejected by every recipient's filter", tx_id)
                return sieve.S550_REJECTED
        if message.size <= PARSE_ON_LOOP and not limit_blocks and not store.messages.blob_on_disk(message.size + len(message.prefix)):
            targets, blob = prepare()  # ~0.3 ms of CPU for 10 KB: cheaper here than two thread hand-offs
        else:  # a large message, a file to fsync, or quota classes read from the store
            targets, blob = await loop.run_in_executor(executor, prepare)
        # The commit is awaited, not waited for in a thread: no worker is parked per message.
        outcomes = await asyncio.wrap_future(store.messages.deliver_soon(blob, targets, internaldate=now)) if targets else []
        if message.folder != "INBOX" and any(o.error == ErrorKind.NOTFOUND for o in outcomes):
            outcomes = await _to_inbox(store, blob, targets, outcomes, now)
        if message.remote:
            if outbound is None:  # the relay check lets no remote recipient through without a queue
                raise Temp("remote recipients and no outbound queue")
            if message.options is not None:
                await outbound.enqueue(blob, sender, list(message.remote), tx_id=tx_id, options=message.options)
            else:
                await outbound.enqueue(blob, sender, list(message.remote), tx_id=tx_id)
    except StoreError as e:
        log.warning("id=%s store refused the message: %s %s", tx_id, e.kind, e.detail)
        return replies.for_error(e.kind, "DATA")
    by_id = {a.id: a for a in message.accounts}
    failed = [(by_id[o.account_id], o) for o in outcomes if not o.ok]
    delivered = len(outcomes) - len(failed)
    for o in outcomes:  # R-OPS-2: in memory, written in a batch after the reply
        if o.ok:
            store.usage.count(o.account_id, "received")
    if plan is not None and plan.decisions:
        delivered += sum(1 for d in plan.decisions.values() if not d.folders)  # discarded, rejected, redirected
        await sieve.after_commit(store, plan, spool=message.spool, start=start, prefix=message.prefix, sender=sender,
                                 outbound=outbound, executor=executor, tx_id=tx_id,
                                 placed={o.account_id for o in outcomes if o.ok})  # fmt: skip
    if not delivered and not message.remote:
        kind = failed[0][1].error if failed and failed[0][1].error else ErrorKind.TEMP
        log.info("id=%s every recipient failed: %s", tx_id, kind)
        return replies.for_error(kind, "DATA")
    opts = message.options or EnvelopeOptions()

    def report(account: Account, diagnostic: str) -> bounce.Failure:
        address = message.rcpt_of.get(account.id, account.address)
        return bounce.Failure(account, diagnostic, address, opts.for_recipient(address).orcpt)

    failures = [report(by_id[i], dsn_diagnostic(d)) for i, d in message.refused.items() if i in by_id]
    for account, outcome in failed:
        diagnostic = dsn_diagnostic(None) if outcome.error == ErrorKind.NOQUOTA else f"550 5.0.0 Not delivered ({outcome.error})"
        failures.append(report(account, diagnostic))
    failures = [f for f in failures if wants(opts.for_recipient(f.address).notify, dsn.FAILED)]
    if failures:
        await _bounce(store, message, failures, tx_id=tx_id, sender=sender, hostname=hostname,
                      executor=executor, outbound=outbound, envid=opts.envid, full=opts.ret == "FULL")  # fmt: skip
    metrics.DELIVERED.inc(delivered)
    ok_ids = {o.account_id for o in outcomes if o.ok}
    successes = list({
        f.address: f for f in (report(by_id[i], "250 2.0.0 Delivered to the mailbox") for i in ok_ids)
        if wants(opts.for_recipient(f.address).notify, dsn.DELIVERED)
    }.values())  # fmt: skip
    if successes:
        await _bounce(store, message, successes, tx_id=tx_id, sender=sender, hostname=hostname, executor=executor,
                      outbound=outbound, envid=opts.envid, full=False, action=dsn.DELIVERED)  # fmt: skip
    log.info("id=%s %s", tx_id, outcome_words(delivered, len(message.remote), len(failures), blob.size))
    return replies.S250_QUEUED.format(id=tx_id)


def outcome_words(delivered: int, queued: int, bounced: int, size: int) -> str:
    """One log line saying what happened to a message: ``delivered to 2 local recipient(s),
    queued for 1 remote recipient(s) size=1234`` — only the parts that happened."""
    parts = []
    if delivered:
        parts.append(f"delivered to {delivered} local recipient(s)")
    if queued:
        parts.append(f"queued for {queued} remote recipient(s)")
    if bounced:
        parts.append(f"{bounced} refused after acceptance (notice sent)")
    return ", ".join(parts or ["nothing delivered"]) + f" size={size}"


async def _to_inbox(store: Store, blob: BlobRef, targets: list[DeliveryTarget], outcomes: list[DeliveryOutcome],
                    now: _dt.datetime) -> list[DeliveryOutcome]:
    """Accounts without the folder (a user deleted Junk) get the message in INBOX instead."""
    missing = {o.account_id for o in outcomes if o.error == ErrorKind.NOTFOUND}
    retry = [DeliveryTarget(t.account_id, "INBOX", quota_limit=t.quota_limit) for t in targets if t.account_id in missing]
    again = {o.account_id: o for o in await asyncio.wrap_future(store.messages.deliver_soon(blob, retry, internaldate=now))}
    return [again.get(o.account_id, o) for o in outcomes]


async def _bounce(store: Store, message: Message, failures: list[bounce.Failure], *, full: bool,
                  action: str = dsn.FAILED, envid: str | None = None, **kw) -> None:  # fmt: skip
    def head() -> tuple[bytes, bytes | None]:
        message.spool.seek(0)
        if full and message.size <= dsn.FULL_RETURN_LIMIT:  # RET=FULL (RFC 3461 4.3)
            whole = message.prefix + message.spool.read()
            return dsn.header_block(whole), whole
        return dsn.header_block(message.prefix + message.spool.read(64 * 1024)), None

    try:
        original, whole = await asyncio.get_running_loop().run_in_executor(kw["executor"], head)
        await bounce.send(store, kw["outbound"], hostname=kw["hostname"], sender=kw["sender"], failures=failures,
                          original_head=original, tx_id=kw["tx_id"], executor=kw["executor"], action=action,
                          envid=envid, full_message=whole)  # fmt: skip
    except Exception:  # the message is stored; a failed DSN must not turn the 250 into an error
        log.exception("id=%s DSN for %s failed", kw["tx_id"], ", ".join(f.account.address for f in failures))
