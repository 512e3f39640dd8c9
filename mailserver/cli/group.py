"""``group add|list|remove|policy|members list|add|remove``: group mailboxes, whose mail goes
into every member's INBOX (R-BOX-4)."""

from __future__ import annotations

import click

from mailserver.cli.base import Context, Group, Refused, find_account, organisation, parse_address, parse_name, pass_ctx
from storage.api import Organisation, SendPolicy


def _local_account(org: Organisation, address: str):
    return find_account(org, address)  # the organisation answers through its accounts role


POLICIES = [p.value for p in SendPolicy]


@click.group(cls=Group)
def group() -> None:
    """Group mailboxes: mail to the group goes into every member's INBOX (R-BOX-4)."""


@group.command("add")
@click.argument("address")
@click.argument("name")
@click.option("--policy", type=click.Choice(POLICIES), default=SendPolicy.DOMAINS.value, show_default=True,
              help="Who may send to the group: anyone, the agency's domains, or members only.")
@click.option("--member", "members", multiple=True, help="Member address (repeatable).")
@pass_ctx
def group_add(obj: Context, address: str, name: str, policy: str, members: tuple[str, ...]) -> None:
    """Create a group mailbox ADDRESS called NAME."""
    address = parse_address(address)
    with organisation(obj) as org:
        accounts = [_local_account(org, a) for a in members]
        g = org.add_group(address, parse_name(name), send_policy=SendPolicy(policy))
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
def group_list(obj: Context) -> None:
    """List groups."""
    with organisation(obj) as org:
        groups = org.list_groups()
    for g in groups:
        click.echo(f"{g.account.address}  {g.account.display_name}  policy={g.send_policy.value}  "
                   f"members={len(g.members)}")
    click.echo(f"{len(groups)} group(s)")


@group.command("remove")
@click.argument("address")
@pass_ctx
def group_remove(obj: Context, address: str) -> None:
    """Delete a group mailbox (its members keep their mail)."""
    with organisation(obj) as org:
        g = _group(org, address)
        org.accounts.delete_account(g.account.id)
    click.echo(f"{g.account.address}: removed")


@group.command("policy")
@click.argument("address")
@click.argument("policy", type=click.Choice(POLICIES))
@pass_ctx
def group_policy(obj: Context, address: str, policy: str) -> None:
    """Set who may send to the group."""
    with organisation(obj) as org:
        g = _group(org, address)
        org.set_send_policy(g.account.id, SendPolicy(policy))
    click.echo(f"{g.account.address}: policy {policy}")


@group.group("members", cls=Group)
def members() -> None:
    """List, add or remove members."""


@members.command("list")
@click.argument("address")
@click.option("--expand", is_flag=True, help="Show who receives the mail (nested groups expanded).")
@pass_ctx
def members_list(obj: Context, address: str, expand: bool) -> None:
    with organisation(obj) as org:
        g = _group(org, address)
        shown = org.expand_accounts(g.account.id) if expand else list(g.members)
    for a in shown:
        click.echo(f"{a.address}  {a.display_name}  {a.kind.value}")
    click.echo(f"{len(shown)} {'recipient' if expand else 'member'}(s)")


@members.command("add")
@click.argument("address")
@click.argument("member_addresses", nargs=-1, required=True, metavar="MEMBER...")
@pass_ctx
def members_add(obj: Context, address: str, member_addresses: tuple[str, ...]) -> None:
    """Add members (accounts or other groups); a loop is refused with its path."""
    with organisation(obj) as org:
        g = _group(org, address)
        accounts = [_local_account(org, a) for a in member_addresses]
        org.add_members(g.account.id, [a.id for a in accounts])  # all or none
    click.echo(f"{g.account.address}: added {', '.join(a.address for a in accounts)}")


@members.command("remove")
@click.argument("address")
@click.argument("member_addresses", nargs=-1, required=True, metavar="MEMBER...")
@pass_ctx
def members_remove(obj: Context, address: str, member_addresses: tuple[str, ...]) -> None:
    with organisation(obj) as org:
        g = _group(org, address)
        accounts = [_local_account(org, a) for a in member_addresses]
        for a in accounts:
            org.remove_member(g.account.id, a.id)
    click.echo(f"{g.account.address}: removed {', '.join(a.address for a in accounts)}")
