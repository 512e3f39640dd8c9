"""The daily rules, on demand: ``lifecycle run`` (account deadlines of the profile, R-LIFE-*,
R-PASS-1/3) and ``retention run`` (expiry of old mail, R-QUOTA-2). The server runs both daily at
``lifecycle.run_at`` and ``retention.run_at``; the account commands that feed the lifecycle rules
(``account revoke|reissue|leave|exempt``) are in account.py.
"""

from __future__ import annotations

import click

from config.sizes import format_limit
from mailserver.cli.base import Context, Group, parse_when, pass_ctx, require_schema
from mailserver.cli.base import utc_now as _now


@click.group(cls=Group)
def lifecycle() -> None:
    """Account lifecycle deadlines of the profile (R-LIFE-*, R-PASS-1/3)."""


@lifecycle.command("run")
@click.option("--dry-run", is_flag=True, help="List the changes due; change nothing, send nothing.")
@click.option("--now", "now_text", metavar="ISO8601", help="Decide as if it were this time (preview, tests).")
@pass_ctx
def lifecycle_run(obj: Context, dry_run: bool, now_text: str | None) -> None:
    """Lock, revoke or delete the accounts whose deadline has passed; one line per change
    (address, from -> to, rule, deadline). The server also runs it daily at lifecycle.run_at."""
    require_schema(obj)
    from mailserver.accounts.lifecycle import run_lifecycle

    now = parse_when(now_text, "--now") if now_text else _now()
    with obj.store() as store:
        changes = run_lifecycle(store, obj.settings, dry_run=dry_run, now=now)
    for change in changes:
        click.echo(change.line(dry_run))
    verb = "would change" if dry_run else "changed"
    click.echo(f"{verb} {len(changes)} account(s) (profile {obj.settings.profile})")


@click.group(cls=Group)
def retention() -> None:
    """Expiry of old mail by the rules of retention.rules (R-QUOTA-2)."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="List what would be expunged; change nothing.")
@pass_ctx
def retention_run(obj: Context, dry_run: bool) -> None:
    """Apply the retention rules now (the server also runs them daily at retention.run_at)."""
    from mailserver.mailboxes.retention import run_retention

    rules = obj.settings.retention.rules
    if not rules:
        click.echo("no retention rules configured (retention.rules)")
        return
    with obj.store() as store:
        expired = run_retention(store, obj.settings, dry_run=dry_run)
    for e in expired:
        click.echo(f"{e.address}\t{e.folder}\tuid {e.uid}\t{e.internaldate:%Y-%m-%d %H:%M}\t{e.size}")
    verb = "would expunge" if dry_run else "expunged"
    click.echo(f"{verb} {len(expired)} message(s), {format_limit(sum(e.size for e in expired))}")
