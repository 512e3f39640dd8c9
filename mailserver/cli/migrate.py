"""``migrate imap``: move accounts' mail in from a live IMAP server (mailserver/migrate/imap.py).

Several accounts at once (``--parallel``), one progress bar per account, then a summary and every
message that could not be copied. Run it again at any time: it copies only what is missing
(resumes after an interruption, picks up new mail before the cut-over).
"""

from __future__ import annotations

import os
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
from rich import box
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mailserver.cli.base import Context, Group, Refused, console, pass_ctx

MASTER_PASSWORD_ENV = "MAILSERVER_MIGRATE_MASTER_PASSWORD"


@click.group(cls=Group)
def migrate() -> None:
    """Move mail in from another server."""


def _parse_source(value: str, tls: bool) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    if not host:
        raise click.BadParameter(f"{value!r} is not HOST or HOST:PORT", param_hint="--from")
    if not port:
        return host, 993 if tls else 143
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{port!r} is not a port number", param_hint="--from")
    return host, int(port)


class _Bar:
    """One account's bar in the shared rich Progress (thread-safe: rich locks)."""

    def __init__(self, progress: Progress, address: str) -> None:
        self.progress = progress
        self.done = self.total = 0
        self.task = progress.add_task(address, total=None, state="waiting", address=address, messages="?")

    def status(self, text: str) -> None:
        self.progress.update(self.task, state=text[:40])

    def start(self, messages: int, size: int) -> None:
        self.total = messages
        self.progress.update(self.task, total=size or 1, completed=0 if size else 1, messages=f"0/{messages}")

    def advance(self, messages: int, size: int) -> None:
        self.done += messages
        self.progress.update(self.task, advance=size, messages=f"{self.done}/{self.total}")


@migrate.command("imap")
@click.option("--from", "source", required=True, metavar="HOST[:PORT]", help="The old IMAP server (port 143, or 993 with --tls).")
@click.option("--tls", is_flag=True, help="Implicit TLS (IMAPS).")
@click.option("--starttls", is_flag=True, help="STARTTLS on the plain port.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Trust this CA (or self-signed certificate) for the source's certificate.")
@click.option("--no-verify", is_flag=True, help="Do not verify the source's certificate (a test box; never over a network you do not trust).")
@click.option("--accounts", "accounts_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV: address,source_user,source_password (empty password: use --master-user).")
@click.option("--master-user", help="Admin/master login used for rows without a password (SASL PLAIN as each user).")
@click.option("--master-password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"File holding the master password (default: ${MASTER_PASSWORD_ENV}).")
@click.option("--parallel", type=click.IntRange(1, 32), default=4, show_default=True, help="Accounts copied at once.")
@click.option("--max-rate", type=click.FloatRange(min=0.1), help="At most this many messages a second per account.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write every problem to this CSV file (address,folder,uid,reason).")
@pass_ctx
def migrate_imap(obj: Context, source: str, tls: bool, starttls: bool, ca_file: Path | None, no_verify: bool,
                 accounts_file: Path, master_user: str | None, master_password_file: Path | None, parallel: int,
                 max_rate: float | None, report_path: Path | None) -> None:
    """Copy every folder, message, flag, keyword and INTERNALDATE of the accounts in the CSV from
    a live IMAP server. Safe to run again: only what is missing is copied."""
    from mailserver.mailboxes.quota import QuotaService
    from mailserver.migrate.imap import SourceServer, migrate_account
    from mailserver.migrate.sources import AccountsFileError, read_accounts

    if tls and starttls:
        raise click.BadParameter("give --tls or --starttls, not both", param_hint="--tls")
    host, port = _parse_source(source, tls)
    master_password = None
    if master_user:
        if master_password_file is not None:
            master_password = master_password_file.read_text(encoding="utf-8").strip()
        else:
            master_password = os.environ.get(MASTER_PASSWORD_ENV)
        if not master_password:
            raise Refused(f"--master-user needs --master-password-file or ${MASTER_PASSWORD_ENV}")
    try:
        accounts = read_accounts(accounts_file, have_master=bool(master_user))
    except AccountsFileError as exc:
        raise Refused(str(exc)) from None
    context = None
    if tls or starttls:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if no_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    server = SourceServer(host, port, tls=tls, starttls=starttls, ssl_context=context,
                          master_user=master_user, master_password=master_password)
    settings = obj.settings
    out = console()
    with obj.store() as store:
        quota = QuotaService(settings, store)
        progress = Progress(
            TextColumn("{task.fields[address]}"), BarColumn(), DownloadColumn(),
            TextColumn("{task.fields[messages]} msgs"), TextColumn("{task.fields[state]}"), TimeElapsedColumn(),
            console=out, transient=False,
        )
        results = []
        lock = threading.Lock()
        with progress:
            bars = {a.address: _Bar(progress, a.address) for a in accounts}

            def run(account):
                r = migrate_account(store, quota, server, account, bars[account.address],
                                    max_size=settings.limits.max_message_size, max_rate=max_rate)
                with lock:
                    results.append(r)

            with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="migrate") as pool:
                list(pool.map(run, accounts))
    order = {a.address: i for i, a in enumerate(accounts)}
    results.sort(key=lambda r: order[r.address])
    _summary(out, results)
    if report_path is not None:
        _write_report(report_path, results)
    failed = [r for r in results if r.error]
    if failed:
        raise Refused(f"{len(failed)} of {len(results)} account(s) not fully migrated (run the same command again to resume)")


def _summary(out, results) -> None:
    table = Table(box=box.SIMPLE, title="migration summary")
    for name in ("account", "folders", "on source", "already here", "copied", "MB copied", "problems", "time", "result"):
        table.add_column(name, justify="right" if name not in ("account", "result") else "left")
    for r in results:
        table.add_row(r.address, str(r.folders), str(r.source_messages), str(r.present), str(r.copied),
                      f"{r.copied_bytes / 1048576:.1f}", str(len(r.problems)), f"{r.seconds:.0f} s",
                      f"FAILED: {r.error}" if r.error else "ok")
    out.print(table)
    for r in results:
        for p in r.problems:
            where = f"{p.folder} uid {p.uid}" if p.uid is not None else p.folder
            out.print(f"{r.address}: {where}: {p.reason}", markup=False)


def _write_report(path: Path, results) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["address", "folder", "uid", "reason"])
        for r in results:
            if r.error:
                w.writerow([r.address, "", "", r.error])
            for p in r.problems:
                w.writerow([r.address, p.folder, "" if p.uid is None else p.uid, p.reason])
