"""``ldap sync [--dry-run]``: the agency directory's units and people become units and
LDAP-backed accounts (R-PROTO-3; mailserver/directory_sync/sync.py). The server also runs it
daily at ``ldap.sync_at``."""

from __future__ import annotations

import click

from mailserver.cli.base import Context, Group, Refused, pass_ctx, require_schema


@click.group(cls=Group)
def ldap() -> None:
    """The agency's LDAP directory (R-PROTO-3)."""


@ldap.command("sync")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@pass_ctx
def ldap_sync(obj: Context, dry_run: bool) -> None:
    """Create units and accounts for the directory's units and people; lock the accounts of people
    disabled in or gone from it. One line per change: action, address, detail."""
    from mailserver.directory_sync.connection import DirectoryError
    from mailserver.directory_sync.sync import sync

    settings = obj.settings
    if not settings.ldap.enabled:
        raise Refused("ldap.url is not set in the configuration: no directory to synchronise with")
    require_schema(obj)
    with obj.store() as store:
        try:
            changes = sync(settings, store, dry_run=dry_run)
        except DirectoryError as exc:
            raise Refused(f"directory: {exc}") from None
    for change in changes:
        click.echo(change.line())
    done = [c for c in changes if c.action != "skip"]
    click.echo(f"{'would change' if dry_run else 'changed'} {len(done)}, skipped {len(changes) - len(done)}")
