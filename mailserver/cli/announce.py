"""``announce``: a notice to every mailbox that logs in, or to one unit (R-OPS-3: users are told
in advance of maintenance downtime), now or at a set time (delivered by the running server)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from mailserver.cli.base import Context, Refused, pass_ctx

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


def _when(_ctx, param, value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a time such as 2026-12-20T08:00 (Vietnam time) or with an offset, "
                                 f"got {value!r}", param=param) from None
    return when if when.tzinfo else when.replace(tzinfo=LOCAL)


@click.command("announce")
@click.option("--subject", help="One line, Vietnamese first (e.g. 'Bảo trì hệ thống thư / Mail maintenance').")
@click.option("--body-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="UTF-8 text: Vietnamese, then English below.")
@click.option("--unit", "unit_code", help="Only this unit's mailboxes (and its sub-units').")
@click.option("--at", "at", callback=_when, metavar="TIME", help="Deliver at this time (the server must be running).")
@click.option("--list", "listing", is_flag=True, help="List scheduled announcements and exit.")
@pass_ctx
def announce(obj: Context, subject: str | None, body_file: Path | None, unit_code: str | None,
             at: dt.datetime | None, listing: bool) -> None:
    """Deliver a notice to every active mailbox (one stored body), now or --at TIME."""
    from mailserver.announcements.compose import compose
    from mailserver.announcements.deliver import deliver, recipients

    if listing:
        with obj.store() as store:
            for a in store.announcements.listing():
                click.echo(f"{a.id}\t{a.due_at.astimezone(LOCAL):%Y-%m-%d %H:%M}\t{a.state}\t{a.delivered}\t"
                           f"{a.unit_code or '*'}\t{a.subject}")
        return
    if not subject or body_file is None:
        raise click.UsageError("--subject and --body-file are required")
    try:
        body = body_file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise click.BadParameter(f"{body_file}: not UTF-8 text (byte {e.start})", param_hint="--body-file") from None
    settings = obj.settings
    sender = settings.role_addresses.postmaster or f"postmaster@{settings.domains[0]}"
    try:
        raw = compose(subject, body, sender=sender, sender_name=settings.agency.name, when=at or dt.datetime.now(LOCAL))
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    with obj.store() as store:
        try:
            accounts = recipients(store, unit_code)  # also checks the unit now, not at delivery
        except LookupError as e:
            raise Refused(str(e).strip("'\"")) from None
        if at is not None and at > dt.datetime.now(dt.UTC):
            number = store.announcements.schedule(at, subject, raw, unit_code)
            click.echo(f"announcement {number}: scheduled for {at.astimezone(LOCAL):%Y-%m-%d %H:%M} (Vietnam time), "
                       f"{len(accounts)} mailbox(es) now")
            return
        delivered, sha = deliver(store, raw, accounts)
    click.echo(f"announcement: delivered to {delivered} mailbox(es), one stored body {sha[:12]}")
