"""``queue list|show|retry|delete``: outgoing mail waiting for delivery to other servers."""

from __future__ import annotations

import datetime as _dt

import click

from mailserver.cli.base import Context, Group, pass_ctx


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


@queue.command("list")
@pass_ctx
def queue_list(obj: Context) -> None:
    """One line per queued recipient: id, age, sender, recipient, state, attempts, next try."""

    with obj.store() as store:
        messages = store.queue.list()
    if not messages:
        click.echo("queue is empty")
        return
    for m in messages:
        for r in m.recipients:
            click.echo(
                f"{m.id}\t{_age(m.created_at)}\t<{m.sender}>\t<{r.address}>\t{r.state}\t"
                f"attempts={r.attempts}\tnext={_utc(r.next_attempt_at) if r.state == 'queued' else '-'}\t{_reply(r)}"
            )
    total = sum(len(m.recipients) for m in messages)
    click.echo(f"{len(messages)} message(s), {total} recipient(s)")


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
@pass_ctx
def queue_delete(obj: Context, message_id: int) -> None:
    """Remove a message from the queue; no notice goes to its sender."""

    with obj.store() as store:
        store.queue.delete(message_id)
    click.echo(f"deleted {message_id}")
