"""``quota show|set|class|report|recalc``: mailbox limits and usage (R-QUOTA-1).

A size such as ``2 gigs`` or ``-1`` is bad usage (exit 2) and the message lists the accepted
forms: the grammar of the YAML file (config/sizes.py), plus ``default`` to go back to the
profile's or class's limit.
"""

from __future__ import annotations

import click
from rich import box
from rich.table import Table

from config.sizes import ACCEPTED_FORMS, format_limit, parse_size
from mailserver.cli.base import (
    Context, Group, Refused, console, emit_rows, find_account, list_options, pass_ctx, progress_bars, unit_account_ids,
)
from storage.api import AccountState

_RESET = ("default", "profile")
_UNLIMITED = ("unlimited", "none")


def _percent(used: int, limit: int | None) -> str:
    return "-" if not limit else f"{used * 100 / limit:.1f}%"


@click.group(cls=Group)
def quota() -> None:
    """Mailbox limits and usage (R-QUOTA-1)."""


@quota.command("show")
@click.argument("address")
@pass_ctx
def quota_show(obj: Context, address: str) -> None:
    """Usage and effective limits of one account, and where each limit comes from."""
    from mailserver.mailboxes.quota import QuotaService

    with obj.store() as store:
        service = QuotaService(obj.settings, store)
        a = find_account(store, address)
        limits = service.limits_for(a)
        class_name = service.usage.class_for(a.id)
        notified = service.usage.notified(a.id)
    source = "account override" if a.quota_bytes is not None else (f"class {class_name}" if class_name else
                                                                   f"profile {obj.settings.profile}")
    for key, value in (
        ("address", a.address),
        ("used", f"{format_limit(a.used_bytes)} ({a.used_bytes} bytes) in {a.used_messages} message(s)"),
        ("mailbox limit", f"{format_limit(limits.mailbox_bytes)} ({source})"),
        ("usage", _percent(a.used_bytes, limits.mailbox_bytes)),
        ("attachments", f"{format_limit(limits.attachment_bytes)} per message"),
        ("class", class_name or "none"),
        ("warned at", f"{notified}%" if notified else "not yet"),
    ):
        click.echo(f"{key + ':':<15}{value}")


class _SizeArg(click.ParamType):
    name = "SIZE"

    def convert(self, value, param, ctx):  # noqa: ANN001 - click's signature
        text = str(value).strip()
        if text.lower() in _RESET + _UNLIMITED:
            return text.lower()
        try:
            return parse_size(text)
        except ValueError:
            self.fail(f"{text!r} is not a size: give {ACCEPTED_FORMS}, or 'default' to use the "
                      "profile's or class's limit", param, ctx)


@quota.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("address")
@click.argument("size", type=_SizeArg())
@pass_ctx
def quota_set(obj: Context, address: str, size) -> None:
    """Give ADDRESS its own mailbox limit: SIZE such as 5GB, 1.5GiB, 500MB, a byte count, or
    'default' (back to the profile's or class's)."""
    from mailserver.mailboxes.quota import QuotaService

    if size in _UNLIMITED:
        raise Refused("an account override cannot be unlimited; give a size, or put the account in a "
                      "quota class with mailbox: null (`mailserver quota class`)")
    value = None if size in _RESET else size
    with obj.store() as store:
        a = find_account(store, address)
        store.usage.set_quota(a.id, value)
        after = store.accounts.get_account_by_id(a.id)
        limits = QuotaService(obj.settings, store).limits_for(after)
    click.echo(f"{a.address}: mailbox limit {format_limit(limits.mailbox_bytes)}"
               + (" (profile/class default)" if value is None else "")
               + f", used {format_limit(after.used_bytes)} ({_percent(after.used_bytes, limits.mailbox_bytes)})")


@quota.command("class")
@click.argument("address")
@click.argument("name")
@pass_ctx
def quota_class(obj: Context, address: str, name: str) -> None:
    """Put an account or a unit mailbox (and so the unit's staff) in the quota class NAME from
    quota.classes in the config; NAME 'none' removes it."""

    known = obj.settings.quota.classes
    if name.lower() != "none" and name not in known:
        raise Refused(f"no quota class {name!r} in quota.classes (configured: {', '.join(sorted(known)) or 'none'})")
    with obj.store() as store:
        a = find_account(store, address)
        store.usage.set_class(a.id, None if name.lower() == "none" else name)
    click.echo(f"{a.address}: quota class {name}")


@quota.command("report")
@click.option("--over", type=click.IntRange(0, 1000), default=None, metavar="PERCENT",
              help="Only accounts using at least PERCENT of their limit.")
@list_options(tuple(s.value for s in AccountState), "Only accounts in this state (repeatable).")
@pass_ctx
def quota_report(obj: Context, over: int | None, unit: str | None, states: tuple[str, ...], as_json: bool,
                 as_csv: bool) -> None:
    """Usage of every account, fullest first by bytes."""
    from mailserver.mailboxes.quota import QuotaService

    rows = []
    with obj.store() as store:
        members = unit_account_ids(store.org, unit) if unit is not None else None
        service = QuotaService(obj.settings, store)
        for a in service.usage.report():
            if (members is not None and a.id not in members) or (states and a.state.value not in states):
                continue
            limit = service.limits_for(a).mailbox_bytes
            if over is not None and (not limit or a.used_bytes * 100 < over * limit):
                continue
            rows.append((a, limit))
    if emit_rows([{"address": a.address, "state": a.state.value, "used_bytes": a.used_bytes, "limit_bytes": limit,
                   "usage_percent": round(a.used_bytes * 100 / limit, 1) if limit else None, "messages": a.used_messages}
                  for a, limit in rows], as_json, as_csv):
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("address", "used", "limit", "usage", "messages"):
        table.add_column(column, no_wrap=True, justify="left" if column == "address" else "right")
    for a, limit in rows:
        table.add_row(a.address, format_limit(a.used_bytes), format_limit(limit), _percent(a.used_bytes, limit), str(a.used_messages))
    console().print(table)
    click.echo(f"{len(rows)} account(s), {format_limit(sum(a.used_bytes for a, _ in rows))} used")


@quota.command("recalc")
@click.argument("address", required=False)
@pass_ctx
def quota_recalc(obj: Context, address: str | None) -> None:
    """Rebuild usage from the messages (one account, or all) and print any drift found."""

    with obj.store() as store:
        if address:
            drift = store.usage.recalc(find_account(store, address).id)
        else:  # one account at a time, so that the bar moves
            accounts = store.accounts.list_accounts()
            drift = []
            with progress_bars() as phases:
                advance = phases("recalc", len(accounts), unit="accounts")
                for a in accounts:
                    drift += store.usage.recalc(a.id)
                    advance(1)
    for d in drift:
        click.echo(f"{d.address}: stored {d.stored_bytes} bytes / {d.stored_messages} message(s), "
                   f"actual {d.actual_bytes} bytes / {d.actual_messages} message(s): fixed")
    click.echo(f"{len(drift)} account(s) with drift" if drift else "no drift")
