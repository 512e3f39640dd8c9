"""Operator commands for outgoing mail: ``queue list|show|retry|delete`` and ``dkim keygen``.

Registered into the main CLI by ``register(cli)`` (mailserver/cli.py); commands use the main
group's context object (``obj.settings``, ``obj.store()``) and its error handling (exit 1 with
one line on a refused operation).
"""

from __future__ import annotations

import datetime as _dt

import click


class _Refused(click.ClickException):
    exit_code = 1


def _when(value: _dt.datetime | None) -> str:
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


def txt_strings(value: str, size: int = 255) -> str:
    """A TXT value as quoted strings of at most 255 bytes (RFC 1035 character-strings)."""
    return " ".join(f'"{value[i : i + size]}"' for i in range(0, len(value), size))


def register(cli: click.Group) -> None:
    """Add the ``queue`` and ``dkim`` groups to ``cli``."""
    group_cls = type(cli)

    @cli.group(cls=group_cls)
    def queue() -> None:
        """Outgoing mail waiting for delivery to other servers."""

    @queue.command("list")
    @click.pass_obj
    def queue_list(obj) -> None:
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
                    f"attempts={r.attempts}\tnext={_when(r.next_attempt_at) if r.state == 'queued' else '-'}\t{_reply(r)}"
                )
        total = sum(len(m.recipients) for m in messages)
        click.echo(f"{len(messages)} message(s), {total} recipient(s)")

    @queue.command("show")
    @click.argument("message_id", type=int)
    @click.pass_obj
    def queue_show(obj, message_id: int) -> None:
        """Everything about one queued message, and its header."""

        with obj.store() as store:
            m = store.queue.show(message_id)
            head = store.messages.read_blob(m.blob_sha, 0, 16 * 1024)
        click.echo(f"id: {m.id}\nsender: <{m.sender}>\nqueued: {_when(m.created_at)} ({_age(m.created_at)} ago)")
        click.echo(f"size: {m.size}\nbody: {m.blob_sha}" + (f"\nsmtp id: {m.tx_id}" if m.tx_id else ""))
        for r in m.recipients:
            click.echo(f"recipient <{r.address}>: {r.state}, {r.attempts} attempt(s), last {_when(r.last_attempt_at)}, "
                       f"next {_when(r.next_attempt_at) if r.state == 'queued' else '-'}")  # fmt: skip
            if r.remote or r.last_reply:
                click.echo(f"  {r.remote or ''}: {_reply(r)}")
        end = head.find(b"\r\n\r\n")
        click.echo("")
        click.echo(head[: end if end >= 0 else len(head)].decode("utf-8", "replace"))

    @queue.command("retry")
    @click.argument("message_id", type=int, required=False)
    @click.option("--all", "all_", is_flag=True, help="Every queued message.")
    @click.pass_obj
    def queue_retry(obj, message_id: int | None, all_: bool) -> None:
        """Try a message (or --all) again at the next pass of the worker."""

        if (message_id is None) == (not all_):
            raise click.UsageError("give a MESSAGE_ID or --all")
        with obj.store() as store:
            count = store.queue.retry(None if all_ else message_id)
        click.echo(f"{count} recipient(s) due now")

    @queue.command("delete")
    @click.argument("message_id", type=int)
    @click.pass_obj
    def queue_delete(obj, message_id: int) -> None:
        """Remove a message from the queue; no notice goes to its sender."""

        with obj.store() as store:
            store.queue.delete(message_id)
        click.echo(f"deleted {message_id}")

    @cli.group(cls=group_cls)
    def dkim() -> None:
        """DKIM keys for signing outgoing mail (R-SEC-2)."""

    @dkim.command("keygen")
    @click.argument("domain")
    @click.option("--selector", help="Selector (default: dkim.selector of the configuration, 'mail').")
    @click.option("--bits", type=click.IntRange(1024, 4096), default=2048, show_default=True)
    @click.pass_obj
    def dkim_keygen(obj, domain: str, selector: str | None, bits: int) -> None:
        """Create DOMAIN's signing key and print the DNS TXT record to publish."""
        from smtp.dkim import generate_key, key_path, txt_record_for

        settings = obj.settings
        domain = domain.strip().lower().rstrip(".")
        if domain not in {d.lower() for d in settings.domains}:
            raise _Refused(f"{domain} is not one of the local domains ({', '.join(settings.domains)})")
        selector = selector or settings.dkim.selectors.get(domain, settings.dkim.selector)
        try:
            path, record = generate_key(settings.data_dir, domain, selector, bits=bits)
        except FileExistsError:
            existing = key_path(settings.data_dir, domain, selector)
            raise _Refused(
                f"{existing} exists (rotate with a new --selector); its record: "
                f"{selector}._domainkey.{domain}. IN TXT {txt_strings(txt_record_for(existing))}"
            ) from None
        click.echo(f"wrote {path}")
        click.echo("publish this DNS record:")
        click.echo(f"{selector}._domainkey.{domain}. IN TXT ( {txt_strings(record)} )")
        active = settings.dkim.selectors.get(domain, settings.dkim.selector)
        if selector != active:
            click.echo(f"then set dkim.selectors: {{{domain}: {selector}}} to sign with it (now: {active})")
