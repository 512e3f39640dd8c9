"""``unit add|list|show|delegate|undelegate|handover|add-address|rename|move|remove``: units (đơn vị) and their unit
mailboxes (R-BOX-2, R-BOX-3). Arguments in, ``store.org`` calls out."""

from __future__ import annotations

import click

from mailserver.cli.base import (
    Context,
    Group,
    Refused,
    confirm,
    console,
    find_account,
    new_password,
    organisation,
    parse_address,
    parse_name,
    pass_ctx,
    show_time,
)
from storage.api import Organisation, Unit, format_rights, parse_rights
from storage.errors import Invalid


def _unit(org: Organisation, key: str) -> Unit:
    unit = org.get_unit(key)
    if unit is None:
        raise Refused(f"no unit {key.strip()} (give its code or address; see `mailserver unit list`)")
    return unit


def _local_account(org: Organisation, address: str):
    return find_account(org, address)  # the organisation answers through its accounts role


@click.group(cls=Group)
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
def unit_add(obj: Context, name: str, code: str, parent: str | None, address: str | None, head: str | None,
             password: str | None) -> None:
    """Create a unit and its mailbox; the head receives the printed password."""
    from mailserver.accounts.auth import hash_password
    from mailserver.policy.addresses import AddressPolicyError, OperatorChoiceRequired, unit_local_part

    settings = obj.settings
    display = parse_name(name)
    with organisation(obj) as org:
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
            address = parse_address(address)
        head_id = _local_account(org, head).id if head else None
        plain = new_password(settings, address, password)
        created = org.add_unit(display, code, address, hash_password(settings.passwords, plain),
                               parent=parent, head_account_id=head_id)
    click.echo(f"unit: {created.code} {' / '.join(created.path)}")
    click.echo(f"address: {created.account.address}")
    click.echo(f"head: {created.head.address if created.head else '-'}")
    if password is None:
        click.echo(f"password: {plain}")


@unit.command("list")
@pass_ctx
def unit_list(obj: Context) -> None:
    """List units as a tree."""
    from rich import box
    from rich.table import Table

    with organisation(obj) as org:
        units = org.list_units()
        delegates = {u.id: len(org.delegations(u.account.id)) for u in units}
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("code", "unit", "address", "head", "delegates", "state"):
        table.add_column(column, no_wrap=column in ("code", "address"))
    for u in units:
        table.add_row(u.code, "  " * (len(u.path) - 1) + u.name, ", ".join(u.addresses),
                      u.head.address if u.head else "-", str(delegates[u.id]), u.account.state.value)
    console().print(table)
    click.echo(f"{len(units)} unit(s)")


@unit.command("show")
@click.argument("unit_key", metavar="UNIT")
@click.option("--audit", "audit_limit", default=20, show_default=True, help="How many audit entries to show.")
@pass_ctx
def unit_show(obj: Context, unit_key: str, audit_limit: int) -> None:
    """Show a unit: addresses, head, delegations and its latest audit entries."""
    with organisation(obj) as org:
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
        click.echo(f"  {d.delegate.address}  {format_rights(d.rights)}  since {show_time(d.granted_at)}")
    click.echo("audit:" + ("" if audit else " none"))
    for e in audit:
        click.echo(f"  {show_time(e.at)}  {e.actor}  {e.action}  {e.detail}")


@unit.command("delegate")
@click.argument("unit_key", metavar="UNIT")
@click.argument("delegate")
@click.option("--rights", default="read", show_default=True,
              help="Comma-separated: read, write-flags, delete, send-as, or all.")
@pass_ctx
def unit_delegate(obj: Context, unit_key: str, delegate: str, rights: str) -> None:
    """Delegate the unit mailbox to DELEGATE on the head's written request (R-BOX-2)."""
    try:
        wanted = parse_rights(rights)
    except Exception as exc:  # storage.errors.Invalid: a usage problem here
        raise click.BadParameter(str(exc), param_hint="--rights") from None
    with organisation(obj) as org:
        u = _unit(org, unit_key)
        d = org.delegate(u.account.id, _local_account(org, delegate).id, wanted)
    click.echo(f"{d.delegate.address} may use {u.account.address}: {format_rights(d.rights)}")


@unit.command("undelegate")
@click.argument("unit_key", metavar="UNIT")
@click.argument("delegate")
@pass_ctx
def unit_undelegate(obj: Context, unit_key: str, delegate: str) -> None:
    """Withdraw a delegation."""
    with organisation(obj) as org:
        u = _unit(org, unit_key)
        account = _local_account(org, delegate)
        org.undelegate(u.account.id, account.id)
    click.echo(f"{account.address} no longer uses {u.account.address}")


@unit.command("handover")
@click.argument("unit_key", metavar="UNIT")
@click.option("--to", "new_head", required=True, help="Address of the new head.")
@click.option("--revoke-delegations", is_flag=True, help="Also end every delegation the old head granted.")
@pass_ctx
def unit_handover(obj: Context, unit_key: str, new_head: str, revoke_delegations: bool) -> None:
    """Hand the unit mailbox to a new head (R-BOX-3): new password, all content kept."""
    from mailserver.accounts.auth import hash_password

    settings = obj.settings
    with organisation(obj) as org:
        u = _unit(org, unit_key)
        head = _local_account(org, new_head)
        plain = new_password(settings, u.account.address, None)
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
def unit_add_address(obj: Context, unit_key: str, address: str) -> None:
    """Give the unit mailbox another address (a unit may have several, R-BOX-2)."""
    address = parse_address(address)
    with organisation(obj) as org:
        u = _unit(org, unit_key)
        org.add_address(u.account.id, address)
    click.echo(f"{address} → {u.account.address}")


@unit.command("rename")
@click.argument("unit_key", metavar="UNIT")
@click.argument("name")
@pass_ctx
def unit_rename(obj: Context, unit_key: str, name: str) -> None:
    """Give UNIT (code or address) a new NAME (R-LIFE-1: a unit renamed); addresses stay."""
    with organisation(obj) as org:
        code = _unit(org, unit_key).code
        renamed = org.rename_unit(code, parse_name(name))
    click.echo(f"{renamed.code}: {renamed.name} ({' / '.join(renamed.path)})")


@unit.command("move")
@click.argument("unit_key", metavar="UNIT")
@click.option("--parent", help="The unit it now belongs to (code); without it: top level.")
@pass_ctx
def unit_move(obj: Context, unit_key: str, parent: str | None) -> None:
    """Put UNIT under another unit (R-LIFE-1: units merged or reorganised)."""
    with organisation(obj) as org:
        code = _unit(org, unit_key).code
        if parent is not None:
            parent = _unit(org, parent).code
        try:
            moved = org.move_unit(code, parent)
        except Invalid as exc:
            raise Refused(exc.detail) from None
    click.echo(f"{moved.code}: {' / '.join(moved.path)}")


@unit.command("remove")
@click.argument("unit_key", metavar="UNIT")
@click.option("--delete-mail", is_flag=True, help="Also delete the unit mailbox when it still holds mail.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")
@pass_ctx
def unit_remove(obj: Context, unit_key: str, delete_mail: bool, yes: bool) -> None:
    """Remove a dissolved UNIT (R-LIFE-1); refused while people or units are in it. Its mailbox is
    deleted when empty; one that holds mail is kept unless --delete-mail (export it first:
    `mailbox export`).

    \b
    Example:
      mailserver unit remove vp --yes
    """
    with obj.store() as store:
        found = _unit(store.org, unit_key)
        mailbox = found.account
        if mailbox.used_messages and not delete_mail:
            raise Refused(f"the unit mailbox {mailbox.address} holds {mailbox.used_messages} message(s): export it "
                          f"(`mailserver mailbox export {mailbox.address} DIR`) and give --delete-mail")
        confirm(yes, f"Remove unit {found.code} and its mailbox {mailbox.address}?")
        try:
            store.org.remove_unit(found.code)
        except Invalid as exc:
            raise Refused(exc.detail) from None
        store.accounts.delete_account(mailbox.id)
    click.echo(f"{found.code}: removed with its mailbox {mailbox.address}")
