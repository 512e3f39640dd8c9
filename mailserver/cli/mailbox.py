"""``mailbox import|export``: one account's mail as Maildir or mbox (mailserver/migrate/files.py).

A user's own copy, a leaver's archive, what a lawful request asks for (R-ACC-2); an import run
twice adds each message once.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from mailserver.cli.base import Context, Group, Refused, console, find_account, pass_ctx


@click.group(cls=Group)
def mailbox() -> None:
    """Import or export one account's mail as mbox or Maildir."""


@mailbox.command("import")
@click.argument("address")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--folder", help="Put the mail in this folder (an mbox file: default INBOX; a directory: under it).")
@click.option("--mboxo", is_flag=True, help="The mbox files are mboxo (only '>From ' was quoted), not mboxrd.")
@pass_ctx
def mailbox_import(obj: Context, address: str, source: Path, folder: str | None, mboxo: bool) -> None:
    """Import SOURCE (an mbox file, a Maildir, or a directory of *.mbox files) into ADDRESS."""
    from mailserver.mailboxes.quota import QuotaService
    from mailserver.migrate.files import FileFormatError, import_messages, read_source

    settings = obj.settings
    out = console()
    with obj.store() as store:
        account = find_account(store, address)
        quota = QuotaService(settings, store)
        try:
            with Progress(TextColumn(account.address), BarColumn(), MofNCompleteColumn(), console=out) as progress:
                task = progress.add_task("import", total=None)
                result = import_messages(store, account, read_source(source, folder=folder, mboxo=mboxo),
                                         quota_limit=quota.delivery_limit(account),
                                         max_size=settings.limits.max_message_size,
                                         progress=lambda n: progress.update(task, advance=n))
        except FileFormatError as exc:
            raise Refused(str(exc)) from None
        except OSError as exc:
            raise Refused(f"cannot read {exc.filename or source}: {exc.strerror or exc}") from None
    click.echo(f"{account.address}: {result.read} read, {result.added} added, {result.present} already there, "
               f"{len(result.problems)} problem(s); folders: {', '.join(sorted(result.folders)) or 'none'}")
    for line in result.problems:
        click.echo(line)


@mailbox.command("export")
@click.argument("address")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["maildir", "mbox"]), default="maildir", show_default=True)
@click.option("--folder", "only", help="Only this folder (and not its children).")
@pass_ctx
def mailbox_export(obj: Context, address: str, directory: Path, fmt: str, only: str | None) -> None:
    """Write ADDRESS's mail into DIRECTORY (Maildir++, or one FOLDER.mbox file per folder)."""
    from mailserver.migrate.files import export_maildir, export_mbox

    if directory.exists() and any(directory.iterdir()):
        raise Refused(f"{directory} is not empty (export into a new directory)")
    with obj.store() as store:
        account = find_account(store, address)
        folders = store.folders.list_folders(account.id)
        if only is not None:
            wanted = "INBOX" if only.upper() == "INBOX" else only
            folders = [f for f in folders if f.name == wanted]
            if not folders:
                raise Refused(f"{account.address} has no folder {only!r}")
        directory.mkdir(parents=True, exist_ok=True)
        write = export_maildir if fmt == "maildir" else export_mbox
        try:
            count = write(store, folders, directory)
        except OSError as exc:
            raise Refused(f"cannot write {exc.filename or directory}: {exc.strerror or exc}") from None
    click.echo(f"{account.address}: {count} message(s) in {len(folders)} folder(s) written to {directory} ({fmt})")
