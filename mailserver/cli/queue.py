"""``queue list|show|retry|delete``: outgoing mail waiting for delivery to other servers;
``queue held|release|delete --held``: the review queue of the classified-document guard (R-SEC-3),
messages of our users that carry a classification stamp (or could not be checked) and wait for an
operator. Only an operator releases one: nothing else delivers it."""

from __future__ import annotations

import datetime as _dt

import click

from mailserver.cli.base import Context, Group, emit_rows, list_options, pass_ctx, unit_account_ids
from storage.api import BOUNCE, FAILED, QUEUED


def _utc(value: _dt.datetime | None) -> str:
    return "-" if value is None else value.astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(value: _dt.datetime) -> str:
    seconds = int((_dt.datetime.now(_dt.UTC) - value).total_seconds())
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def _reply(r) -> str:
    if not r.last_reply and r.last_code is None:
        return ""
    text = " ".join((r.last_reply or "").split())
    return f"{r.last_code} {text}" if r.last_code else text


@click.group(cls=Group)
def queue() -> None:
    """Outgoing mail waiting for delivery to other servers."""


#: what a queued recipient can be: waiting, a DSN owed, given up (storage/api/queue.py)
RECIPIENT_STATES = (QUEUED, BOUNCE, FAILED)


@queue.command("list")
@list_options(RECIPIENT_STATES, "Only recipients in this state (repeatable).")
@pass_ctx
def queue_list(obj: Context, unit: str | None, states: tuple[str, ...], as_json: bool, as_csv: bool) -> None:
    """One line per queued recipient: id, age, sender, recipient, state, attempts, next try.
    ``--unit``: messages sent by that unit's accounts (and its units')."""
    with obj.store() as store:
        messages = store.queue.list()
        if unit is not None:
            members = unit_account_ids(store.org, unit)
            senders = {a.address for a in store.accounts.list_accounts() if a.id in members}
            messages = [m for m in messages if m.sender.lower() in senders]
    pairs = [(m, r) for m in messages for r in m.recipients if not states or r.state in states]
    rows = [{"id": m.id, "created": m.created_at.isoformat(timespec="seconds"), "sender": m.sender, "recipient": r.address,
             "state": r.state, "attempts": r.attempts,
             "next_attempt": r.next_attempt_at.isoformat(timespec="seconds") if r.state == "queued" else None,
             "last_reply": _reply(r) or None} for m, r in pairs]
    if emit_rows(rows, as_json, as_csv):
        return
    if not pairs:
        click.echo("queue is empty")
        return
    for m, r in pairs:
        click.echo(
            f"{m.id}\t{_age(m.created_at)}\t<{m.sender}>\t<{r.address}>\t{r.state}\t"
            f"attempts={r.attempts}\tnext={_utc(r.next_attempt_at) if r.state == 'queued' else '-'}\t{_reply(r)}"
        )
    click.echo(f"{len({m.id for m, _ in pairs})} message(s), {len(pairs)} recipient(s)")


@queue.command("show")
@click.argument("message_id", type=int)
@pass_ctx
def queue_show(obj: Context, message_id: int) -> None:
    """Everything about one queued message, and its header."""

    with obj.store() as store:
        m = store.queue.show(message_id)
        head = store.messages.read_blob(m.blob_sha, 0, 16 * 1024)
    click.echo(f"id: {m.id}\nsender: <{m.sender}>\nqueued: {_utc(m.created_at)} ({_age(m.created_at)} ago)")
    click.echo(f"size: {m.size}\nbody: {m.blob_sha}" + (f"\nsmtp id: {m.tx_id}" if m.tx_id else ""))
    for r in m.recipients:
        click.echo(f"recipient <{r.address}>: {r.state}, {r.attempts} attempt(s), last {_utc(r.last_attempt_at)}, "
                   f"next {_utc(r.next_attempt_at) if r.state == 'queued' else '-'}")  # fmt: skip
        if r.remote or r.last_reply:
            click.echo(f"  {r.remote or ''}: {_reply(r)}")
    end = head.find(b"\r\n\r\n")
    click.echo("")
    click.echo(head[: end if end >= 0 else len(head)].decode("utf-8", "replace"))


@queue.command("retry")
@click.argument("message_id", type=int, required=False)
@click.option("--all", "all_", is_flag=True, help="Every queued message.")
@pass_ctx
def queue_retry(obj: Context, message_id: int | None, all_: bool) -> None:
    """Try a message (or --all) again at the next pass of the worker."""

    if (message_id is None) == (not all_):
        raise click.UsageError("give a MESSAGE_ID or --all")
    with obj.store() as store:
        count = store.queue.retry(None if all_ else message_id)
    click.echo(f"{count} recipient(s) due now")


@queue.command("delete")
@click.argument("message_id", type=int)
@click.option("--held", is_flag=True, help="A message of the review queue (queue held), not of the outbound queue.")
@pass_ctx
def queue_delete(obj: Context, message_id: int, held: bool) -> None:
    """Remove a message from the queue (or, with --held, from the review queue: never delivered);
    no notice goes to its sender."""

    with obj.store() as store:
        if held:
            m = store.held.get(message_id)
            store.held.remove(message_id)
            if m.account_id is not None:
                store.org.record_access(None, m.account_id, "classified-delete", f"held={m.id} {m.reason} in {m.part}")
        else:
            store.queue.delete(message_id)
    click.echo(f"deleted {'held message ' if held else ''}{message_id}")


@queue.command("held")
@click.argument("held_id", type=int, required=False)
@pass_ctx
def queue_held(obj: Context, held_id: int | None) -> None:
    """Messages held by the classified-document guard: one line each, or one in full with its header."""

    with obj.store() as store:
        if held_id is not None:
            m = store.held.get(held_id)
            head = store.messages.read_blob(m.blob_sha, 0, 16 * 1024)
            local = store.accounts.get_accounts_by_ids(list(m.local_ids)) if m.local_ids else {}
        else:
            messages = store.held.list()
    if held_id is None:
        if not messages:
            click.echo("no held messages")
            return
        for m in messages:
            click.echo(f"{m.id}\t{_age(m.created_at)}\t<{m.sender}>\t{len(m.local_ids) + len(m.remote)} recipient(s)\t"
                       f"{m.reason}\t{m.part}\t{m.detail}")  # fmt: skip
        click.echo(f"{len(messages)} held message(s)")
        return
    click.echo(f"id: {m.id}\nsender: <{m.sender}>\nheld: {_utc(m.created_at)} ({_age(m.created_at)} ago)\nsize: {m.size}")
    click.echo(f"reason: {m.reason}\npart: {m.part}\ndetail: {m.detail}" + (f"\nsmtp id: {m.tx_id}" if m.tx_id else ""))
    for account_id in m.local_ids:
        account = local.get(account_id)
        click.echo(f"recipient (local): {account.address if account is not None else f'account {account_id} (gone)'}")
    for address in m.remote:
        click.echo(f"recipient (remote): <{address}>")
    end = head.find(b"\r\n\r\n")
    click.echo("")
    click.echo(head[: end if end >= 0 else len(head)].decode("utf-8", "replace"))


@queue.command("release")
@click.argument("held_id", type=int)
@pass_ctx
def queue_release(obj: Context, held_id: int) -> None:
    """Deliver a held message (the operator judged it not classified): local recipients get it
    now, remote ones through the outbound queue. Recorded in the audit log."""
    from storage.api import DeliveryTarget

    with obj.store() as store:
        m = store.held.get(held_id)
        delivered, failed = 0, []
        if m.local_ids:
            blob = store.messages.put_blob(store.messages.read_blob(m.blob_sha))
            targets = [DeliveryTarget(account_id, "INBOX", quota_limit=None) for account_id in m.local_ids]
            for target, outcome in zip(targets, store.messages.deliver(blob, targets)):
                if outcome.ok:
                    delivered += 1
                else:
                    failed.append(f"account {target.account_id}: {outcome.error}")
        queued = 0
        if m.remote:
            store.queue.enqueue(m.blob_sha, m.sender, list(m.remote), tx_id=m.tx_id)
            queued = len(m.remote)
        store.held.remove(held_id)
        if m.account_id is not None:
            store.org.record_access(None, m.account_id, "classified-release", f"held={m.id} {m.reason} in {m.part}")
    click.echo(f"released {held_id}: {delivered} delivered, {queued} queued for other servers")
    for line in failed:
        click.echo(f"not delivered: {line}", err=True)
