"""Operator commands for the organisation model (issue 4): ``unit``, ``group``, ``account import``
and ``directory export``. Arguments in, ``store.org`` / ``mailserver.provisioning`` /
``mailserver.directory`` calls out, one-line errors (exit 1 refused, 2 usage; never a traceback:
mailserver.cli's group turns store errors into one line).

``register(cli)`` adds them to the main command group (called once from mailserver/cli.py).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Iterator

import click

from storage.api import Organisation, SendPolicy, Unit, format_rights, parse_rights

# mailserver.cli imports this module to register it, so its helpers are looked up when a command
# runs, never at import time: either module may be imported first. The root group of
# mailserver.cli turns store and unexpected errors into one line (exit 1).
pass_ctx = click.pass_obj


class Refused(click.ClickException):
    """A refused operation: message on stderr, exit status 1 (as mailserver.cli.Refused)."""

    exit_code = 1


def _base():
    from mailserver import cli

    return cli


@contextlib.contextmanager
def _org(obj) -> Iterator[Organisation]:
    with obj.store() as store:
        yield store.org


def _unit(org: Organisation, key: str) -> Unit:
    unit = org.get_unit(key)
    if unit is None:
        raise Refused(f"no unit {key.strip()} (give its code or address; see `mailserver unit list`)")
    return unit


def _local_account(org: Organisation, address: str):
    return _base()._account(org, address)  # the organisation's ``accounts`` role answers


# -- unit -----------------------------------------------------------------------------------------

@click.group(cls=click.Group)
def unit() -> None:
    """Units (đơn vị) and their unit mailboxes (R-BOX-2, R-BOX-3)."""


@unit.command("add")
@click.argument("name")
@click.option("--code", required=True, help="Short code of the unit, e.g. vp (no spaces).")
@click.option("--parent", help="Code of the parent unit (ministry → department → office).")
@click.option("--address", help="Unit mailbox address (default: initials of NAME by the profile's rule, R-ADDR-*).")
@click.option("--head", help="Address of the head of the unit (a personal account).")
@click.option("--password", help="Initial password of the unit mailbox (default: a random one, printed).")
@pass_ctx
def unit_add(obj, name: str, code: str, parent: str | None, address: str | None, head: str | None,
             password: str | None) -> None:
    """Create a unit and its mailbox; the head receives the printed password."""
    from mailserver.auth import hash_password
    from mailserver.policy.addresses import AddressPolicyError, OperatorChoiceRequired, unit_local_part

    settings = obj.settings
    display = _base()._display_name(name)
    with _org(obj) as org:
        if address is None:
            domain = settings.domains[0]
            try:
                local = unit_local_part(display, settings.address_rule, org.taken_local_parts(domain))
            except OperatorChoiceRequired as exc:
                raise Refused(f"{exc} (suggested: {exc.candidate}@{domain})") from None
            except AddressPolicyError as exc:
                raise Refused(f"{exc} (give the address with --address)") from None
            address = f"{local}@{domain}"
        else:
            address = _base()._address(address)
        head_id = _local_account(org, head).id if head else None
        plain = _base()._new_password(settings, address, password)
        created = org.add_unit(display, code, address, hash_password(settings.passwords, plain),
                               parent=parent, head_account_id=head_id)
    click.echo(f"unit: {created.code} {' / '.join(created.path)}")
    click.echo(f"address: {created.account.address}")
    click.echo(f"head: {created.head.address if created.head else '-'}")
    if password is None:
        click.echo(f"password: {plain}")


@unit.command("list")
@pass_ctx
def unit_list(obj) -> None:
    """List units as a tree."""
    from rich import box
    from rich.table import Table

    with _org(obj) as org:
        units = org.list_units()
        delegates = {u.id: len(org.delegations(u.account.id)) for u in units}
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("code", "unit", "address", "head", "delegates", "state"):
        table.add_column(column, no_wrap=column in ("code", "address"))
    for u in units:
        table.add_row(u.code, "  " * (len(u.path) - 1) + u.name, ", ".join(u.addresses),
                      u.head.address if u.head else "-", str(delegates[u.id]), u.account.state.value)
    _base()._console().print(table)
    click.echo(f"{len(units)} unit(s)")


@unit.command("show")
@click.argument("unit_key", metavar="UNIT")
@click.option("--audit", "audit_limit", default=20, show_default=True, help="How many audit entries to show.")
@pass_ctx
def unit_show(obj, unit_key: str, audit_limit: int) -> None:
    """Show a unit: addresses, head, delegations and its latest audit entries."""
    with _org(obj) as org:
        u = _unit(org, unit_key)
        delegations = org.delegations(u.account.id)
        audit = org.audit_log(u.account.id, limit=audit_limit)
    for key, value in (("unit", f"{u.code} {' / '.join(u.path)}"), ("addresses", ", ".join(u.addresses)),
                       ("head", u.head.address if u.head else "-"), ("state", u.account.state.value),
                       ("shared folder", u.shared_name),
                       ("messages", f"{u.account.used_messages} ({u.account.used_bytes} bytes)")):
        click.echo(f"{key + ':':<15}{value}")
    click.echo("delegates:" + ("" if delegations else " none"))
    for d in delegations:
        click.echo(f"  {d.delegate.address}  {format_rights(d.rights)}  since {_base()._when(d.granted_at)}")
    click.echo("audit:" + ("" if audit else " none"))
    for e in audit:
        click.echo(f"  {_base()._when(e.at)}  {e.actor}  {e.action}  {e.detail}")


@unit.command("delegate")
@click.argument("unit_key", metavar="UNIT")
@click.argument("delegate")
@click.option("--rights", default="read", show_default=True,
              help="Comma-separated: read, write-flags, delete, send-as, or all.")
@pass_ctx
def unit_delegate(obj, unit_key: str, delegate: str, rights: str) -> None:
    """Delegate the unit mailbox to DELEGATE on the head's written request (R-BOX-2)."""
    try:
        wanted = parse_rights(rights)
    except Exception as exc:  # storage.errors.Invalid: a usage problem here
        raise click.BadParameter(str(exc), param_hint="--rights") from None
    with _org(obj) as org:
        u = _unit(org, unit_key)
        d = org.delegate(u.account.id, _local_account(org, delegate).id, wanted)
    click.echo(f"{d.delegate.address} may use {u.account.address}: {format_rights(d.rights)}")


@unit.command("undelegate")
@click.argument("unit_key", metavar="UNIT")
@click.argument("delegate")
@pass_ctx
def unit_undelegate(obj, unit_key: str, delegate: str) -> None:
    """Withdraw a delegation."""
    with _org(obj) as org:
        u = _unit(org, unit_key)
        account = _local_account(org, delegate)
        org.undelegate(u.account.id, account.id)
    click.echo(f"{account.address} no longer uses {u.account.address}")


@unit.command("handover")
@click.argument("unit_key", metavar="UNIT")
@click.option("--to", "new_head", required=True, help="Address of the new head.")
@click.option("--revoke-delegations", is_flag=True, help="Also end every delegation the old head granted.")
@pass_ctx
def unit_handover(obj, unit_key: str, new_head: str, revoke_delegations: bool) -> None:
    """Hand the unit mailbox to a new head (R-BOX-3): new password, all content kept."""
    from mailserver.auth import hash_password

    settings = obj.settings
    with _org(obj) as org:
        u = _unit(org, unit_key)
        head = _local_account(org, new_head)
        plain = _base()._new_password(settings, u.account.address, None)
        after = org.handover(u.code, head.id, hash_password(settings.passwords, plain),
                             revoke_delegations=revoke_delegations)
        kept = org.delegations(u.account.id)
    click.echo(f"unit: {after.code} {' / '.join(after.path)}")
    click.echo(f"address: {after.account.address}")
    click.echo(f"head: {u.head.address if u.head else '-'} → {after.head.address}")
    click.echo(f"password: {plain}")
    click.echo(f"messages kept: {after.account.used_messages}")
    if kept:
        click.echo("delegations kept (review with the new head): "
                   + ", ".join(f"{d.delegate.address} {format_rights(d.rights)}" for d in kept))


@unit.command("add-address")
@click.argument("unit_key", metavar="UNIT")
@click.argument("address")
@pass_ctx
def unit_add_address(obj, unit_key: str, address: str) -> None:
    """Give the unit mailbox another address (a unit may have several, R-BOX-2)."""
    address = _base()._address(address)
    with _org(obj) as org:
        u = _unit(org, unit_key)
        org.add_address(u.account.id, address)
    click.echo(f"{address} → {u.account.address}")


# -- group ----------------------------------------------------------------------------------------

POLICIES = [p.value for p in SendPolicy]


@click.group(cls=click.Group)
def group() -> None:
    """Group mailboxes: mail to the group goes into every member's INBOX (R-BOX-4)."""


@group.command("add")
@click.argument("address")
@click.argument("name")
@click.option("--policy", type=click.Choice(POLICIES), default=SendPolicy.DOMAINS.value, show_default=True,
              help="Who may send to the group: anyone, the agency's domains, or members only.")
@click.option("--member", "members", multiple=True, help="Member address (repeatable).")
@pass_ctx
def group_add(obj, address: str, name: str, policy: str, members: tuple[str, ...]) -> None:
    """Create a group mailbox ADDRESS called NAME."""
    address = _base()._address(address)
    with _org(obj) as org:
        accounts = [_local_account(org, a) for a in members]
        g = org.add_group(address, _base()._display_name(name), send_policy=SendPolicy(policy))
        if accounts:
            org.add_members(g.account.id, [a.id for a in accounts])
    click.echo(f"group: {g.account.address} ({g.account.display_name}), policy {policy}, {len(accounts)} member(s)")


def _group(org: Organisation, key: str):
    g = org.get_group(key.strip().lower())
    if g is None:
        raise Refused(f"no group {key.strip()}")
    return g


@group.command("list")
@pass_ctx
def group_list(obj) -> None:
    """List groups."""
    with _org(obj) as org:
        groups = org.list_groups()
    for g in groups:
        click.echo(f"{g.account.address}  {g.account.display_name}  policy={g.send_policy.value}  "
                   f"members={len(g.members)}")
    click.echo(f"{len(groups)} group(s)")


@group.command("remove")
@click.argument("address")
@pass_ctx
def group_remove(obj, address: str) -> None:
    """Delete a group mailbox (its members keep their mail)."""
    with _org(obj) as org:
        g = _group(org, address)
        org.accounts.delete_account(g.account.id)
    click.echo(f"{g.account.address}: removed")


@group.command("policy")
@click.argument("address")
@click.argument("policy", type=click.Choice(POLICIES))
@pass_ctx
def group_policy(obj, address: str, policy: str) -> None:
    """Set who may send to the group."""
    with _org(obj) as org:
        g = _group(org, address)
        org.set_send_policy(g.account.id, SendPolicy(policy))
    click.echo(f"{g.account.address}: policy {policy}")


@group.group("members", cls=click.Group)
def members() -> None:
    """List, add or remove members."""


@members.command("list")
@click.argument("address")
@click.option("--expand", is_flag=True, help="Show who receives the mail (nested groups expanded).")
@pass_ctx
def members_list(obj, address: str, expand: bool) -> None:
    with _org(obj) as org:
        g = _group(org, address)
        shown = org.expand_accounts(g.account.id) if expand else list(g.members)
    for a in shown:
        click.echo(f"{a.address}  {a.display_name}  {a.kind.value}")
    click.echo(f"{len(shown)} {'recipient' if expand else 'member'}(s)")


@members.command("add")
@click.argument("address")
@click.argument("member_addresses", nargs=-1, required=True, metavar="MEMBER...")
@pass_ctx
def members_add(obj, address: str, member_addresses: tuple[str, ...]) -> None:
    """Add members (accounts or other groups); a loop is refused with its path."""
    with _org(obj) as org:
        g = _group(org, address)
        accounts = [_local_account(org, a) for a in member_addresses]
        org.add_members(g.account.id, [a.id for a in accounts])  # all or none
    click.echo(f"{g.account.address}: added {', '.join(a.address for a in accounts)}")


@members.command("remove")
@click.argument("address")
@click.argument("member_addresses", nargs=-1, required=True, metavar="MEMBER...")
@pass_ctx
def members_remove(obj, address: str, member_addresses: tuple[str, ...]) -> None:
    with _org(obj) as org:
        g = _group(org, address)
        accounts = [_local_account(org, a) for a in member_addresses]
        for a in accounts:
            org.remove_member(g.account.id, a.id)
    click.echo(f"{g.account.address}: removed {', '.join(a.address for a in accounts)}")


# -- account import -------------------------------------------------------------------------------

@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the sheet and show the addresses; create nothing.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the result sheets (default: FILE's name + '-accounts' next to it).")
@click.option("--unit", "default_unit", help="Unit (code) for rows that leave Phòng ban/Đơn vị empty.")
@pass_ctx
def account_import(obj, file: Path, dry_run: bool, out_dir: Path | None, default_unit: str | None) -> None:
    """Create the accounts of a registration form (CSV), all or nothing (R-LIFE-1)."""
    from mailserver import provisioning as prov

    settings = obj.settings
    try:
        sheet = prov.read_sheet(file.read_bytes())
        with _org(obj) as org:
            planned = prov.plan(sheet, org, settings, default_unit=default_unit)
            if sheet.ignored_columns:
                click.echo(f"ignored columns: {'; '.join(sheet.ignored_columns)}")
            if dry_run:
                for p in planned:
                    click.echo(f"line {p.row.line}: {p.row.name} | {p.unit.code} | {p.row.title} → {p.address}")
                click.echo(f"dry run: {len(planned)} account(s) would be created; nothing was changed")
                return
            out = out_dir or file.with_name(file.stem + "-accounts")
            sheets = prov.execute(planned, org, settings, out, delimiter=sheet.delimiter)
    except prov.ImportRefused as exc:
        for line, message in exc.errors:
            click.echo(f"{file.name}:{line}: {message}" if line else f"{file.name}: {message}", err=True)
        raise Refused(f"nothing created: {len(exc.errors)} problem(s)") from None
    for p in planned:
        click.echo(f"line {p.row.line}: {p.row.name} → {p.address}")
    click.echo(f"created {len(planned)} account(s); initial passwords in:")
    for path in sheets:
        click.echo(f"  {path}")


# -- directory ------------------------------------------------------------------------------------

@click.group(cls=click.Group)
def directory() -> None:
    """The e-mail directory (danh bạ, R-DIR-1)."""


@directory.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "vcf", "ldif", "html"]), default="csv",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout).")
@click.option("--title", default="Danh bạ thư điện tử", show_default=True, help="Title of the HTML/JSON directory.")
@pass_ctx
def directory_export(obj, fmt: str, output: Path | None, title: str) -> None:
    """Every receiving unit, group and personal address, in Vietnamese order."""
    from mailserver import directory as d

    with _org(obj) as org:
        items = d.entries(org.directory_rows())
    base_dn = ",".join(f"dc={label}" for label in obj.settings.domains[0].split("."))
    text = d.render(items, fmt, title=title, base_dn=base_dn)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    output.write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="")
    click.echo(f"{len(items)} entr{'y' if len(items) == 1 else 'ies'} → {output}", err=True)


def register(cli_group: click.Group) -> None:
    """Add ``unit``, ``group``, ``directory`` and ``account import`` to the main group (idempotent)."""
    for cmd in (unit, group, directory):
        if cmd.name not in cli_group.commands:
            cli_group.add_command(cmd)
    account = cli_group.commands.get("account")
    if isinstance(account, click.Group) and "import" not in account.commands:
        account.add_command(account_import)
