"""``filter``: users' mail filters (Sieve, RFC 5228), forwarding and aliases of personal accounts,
for the operator (users manage their filters over ManageSieve or the portal's /vacation)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from mailserver.cli.base import Context, Group, Refused, find_account, parse_address, pass_ctx

_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


@click.group("filter", cls=Group)
def filters() -> None:
    """Mail filters (Sieve), forwarding and aliases of an account."""


@filters.command("list")
@click.argument("address")
@pass_ctx
def filter_list(obj: Context, address: str) -> None:
    """The account's scripts (the active one marked) and its forwarding."""
    with obj.store() as store:
        account = find_account(store, address)
        for s in store.sieve.list_scripts(account.id):
            click.echo("\t".join([s.name, f"{s.size} bytes", *(["active"] if s.active else [])]))
        forward = store.sieve.forwards([account.id]).get(account.id)
        if forward is not None:
            click.echo(f"forward to {', '.join(forward.targets)} ({'keeping' if forward.keep else 'without'} a local copy)")


@filters.command("show")
@click.argument("address")
@click.argument("name")
@pass_ctx
def filter_show(obj: Context, address: str, name: str) -> None:
    """Print one script."""
    with obj.store() as store:
        text = store.sieve.get_script(find_account(store, address).id, name)
        if text is None:
            raise Refused(f"no script {name!r}")
        click.echo(text, nl=False)


@filters.command("put")
@click.argument("address")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--activate", is_flag=True, help="Make it the active script.")
@pass_ctx
def filter_put(obj: Context, address: str, name: str, file: Path, activate: bool) -> None:
    """Store FILE as the account's script NAME (checked first: errors give the line)."""
    from sieve.script import ScriptError, compile_script

    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise Refused(f"{file}: not UTF-8 text") from None
    try:
        compile_script(text)
    except ScriptError as e:
        raise Refused(f"{file}: {e}") from None
    if len(text.encode()) > obj.settings.sieve.max_script_size:
        raise Refused(f"{file}: over sieve.max_script_size ({obj.settings.sieve.max_script_size} bytes)")
    with obj.store() as store:
        account = find_account(store, address)
        store.sieve.put_script(account.id, name, text)
        if activate:
            store.sieve.set_active(account.id, name)
    click.echo(f"{account.address}: {name}{' (active)' if activate else ''}")


@filters.command("activate")
@click.argument("address")
@click.argument("name", required=False)
@pass_ctx
def filter_activate(obj: Context, address: str, name: str | None) -> None:
    """Make NAME the active script; without NAME, none is active."""
    with obj.store() as store:
        store.sieve.set_active(find_account(store, address).id, name)


@filters.command("forward")
@click.argument("address")
@click.argument("targets", nargs=-1)
@click.option("--keep/--no-keep", default=True, show_default=True, help="Also keep a copy in the account.")
@click.option("--off", is_flag=True, help="Stop forwarding.")
@pass_ctx
def filter_forward(obj: Context, address: str, targets: tuple[str, ...], keep: bool, off: bool) -> None:
    """Forward the account's mail to TARGETS (loops are detected: a message that already passed
    the account is kept, not forwarded again)."""
    from storage.api import Forward

    if off == bool(targets):
        raise click.UsageError("give TARGETS, or --off")
    wanted = tuple(dict.fromkeys(t.strip().lower() for t in targets))
    for t in wanted:
        if not _ADDRESS.match(t):
            raise click.BadParameter(f"{t!r} is not an address", param_hint="TARGETS")
    with obj.store() as store:
        account = find_account(store, address)
        if account.address in wanted:
            raise Refused("an account cannot forward to itself")
        store.sieve.set_forward(account.id, None if off else Forward(wanted, keep))
    click.echo(f"{account.address}: " + ("no forwarding" if off else f"forward to {', '.join(wanted)}"
                                         f" ({'keeping' if keep else 'without'} a local copy)"))


@filters.command("alias")
@click.argument("address")
@click.argument("alias")
@pass_ctx
def filter_alias(obj: Context, address: str, alias: str) -> None:
    """Give the account another address in a local domain: mail to ALIAS is delivered to it."""
    alias = parse_address(alias)
    with obj.store() as store:
        account = find_account(store, address)
        store.org.add_address(account.id, alias)
    click.echo(f"{alias} → {account.address}")
