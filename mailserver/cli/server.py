"""Setting up and running the server: ``init``, ``serve``, ``config check`` and ``db
upgrade|backup|status``."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import click

from config.loader import PROFILES, load_settings
from config.names import check_domain
from config.settings import Settings
from config.sizes import format_limit
from mailserver.cli.base import CONFIG_NAME, DEFAULT_CONFIG, Context, Group, Refused, pass_ctx, progress_bars, safe_url, short_path


@click.command()
@click.option("--profile", type=click.Choice(PROFILES), default="none", show_default=True,
              help="Regulation preset (quotas, password rules, lifecycle, address rule).")
@click.option("--domain", "domains", multiple=True, help="Local mail domain (repeatable; default: the profile's).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the config, database and certificates (default ./data).")
@click.option("--hostname", help="Server name for greetings and the certificate (default mail.<first domain>).")
@click.option("--listen", default="127.0.0.1", show_default=True, help="Address every listener binds to.")
@pass_ctx
def init(obj: Context, profile: str, domains: tuple[str, ...], data_dir: Path | None,
         hostname: str | None, listen: str) -> None:
    """Write a commented config, a self-signed certificate and an empty, migrated database."""
    _initialise(obj, profile=profile, domains=list(domains), data_dir=data_dir, hostname=hostname, listen=listen)


def _initialise(obj: Context, *, profile: str = "none", domains: list[str] | None = None,
                data_dir: Path | None = None, hostname: str | None = None, listen: str = "127.0.0.1") -> None:
    from config.defaults import render_config
    from config.loader import PROFILE_DIR
    from mailserver.maintenance.tls import ensure_certificate

    if data_dir is not None and not obj.explicit:
        obj.config_path = data_dir / CONFIG_NAME
    config = obj.config_path
    data_dir = data_dir if data_dir is not None else config.parent
    if config.exists():
        raise Refused(f"{config} already exists; not overwriting it (edit it, or move it away to start again)")
    if not domains:
        import yaml

        domains = list(yaml.safe_load((PROFILE_DIR / f"{profile}.yaml").read_text("utf-8")).get("domains")
                       or Settings.model_fields["domains"].default)
    try:  # before anything is written: a bad name leaves no half-made directory
        domains = [check_domain(d) for d in domains]
        hostname = check_domain(hostname or f"mail.{domains[0]}")
    except ValueError as exc:
        raise Refused(f"--domain/--hostname: {exc}") from None
    config.parent.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    relative_data_dir = os.path.relpath(data_dir.resolve(), config.parent.resolve())
    text = render_config(profile=profile, hostname=hostname, domains=domains,
                         data_dir=relative_data_dir, listen=listen)
    # Everything is prepared against a temporary name; the real file appears last, so a failed
    # init can simply be run again.
    pending = config.with_name(f".{config.name}.new")
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    try:
        settings = load_settings(pending)
        if ensure_certificate(settings.tls.cert, settings.tls.key, settings.hostname):
            click.echo(f"created a self-signed certificate for {settings.hostname}: {short_path(settings.tls.cert)}")
        from mailserver.app import migrate, open_store

        migrate(settings)
        store = open_store(settings)
        try:
            for domain in settings.domains:
                if not store.accounts.is_local_domain(domain):
                    store.accounts.add_domain(domain)
        finally:
            store.close()
        if config.exists():
            raise Refused(f"{config} appeared while initialising; not overwriting it")
        os.replace(pending, config)
    finally:
        pending.unlink(missing_ok=True)
    obj.forget_settings()
    click.echo(f"wrote {short_path(config)} (profile {profile}, domains {', '.join(domains)})")
    click.echo(f"database ready: {safe_url(settings.database.url)}")
    click.echo(f"next: {_next_command(settings, config)}")


def _next_command(settings: Settings, config: Path) -> str:
    """The first account, as a command that works as printed: the profile's address rule
    (hcm-q4: ``annv.q4@tphcm.gov.vn``, R-ADDR-3) and ``--config`` unless it is the default."""
    from mailserver.policy.addresses import derive_local_part

    local = derive_local_part("Nguyễn Văn An", (), settings.address_rule)
    where = "" if config == DEFAULT_CONFIG else f"--config {shlex.quote(str(config))} "
    return f'mailserver {where}account add "Nguyễn Văn An" --address {local}@{settings.domains[0]}'


@click.command()
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes sharing the listeners (more than 1 needs PostgreSQL).")
@pass_ctx
def serve(obj: Context, workers: int) -> None:
    """Run SMTP, IMAP4 and POP3 (first start without --config: init ./data with defaults)."""
    if not obj.explicit and not obj.config_path.exists():
        click.echo(f"{short_path(obj.config_path)} not found: initialising with defaults", err=True)
        _initialise(obj)
    settings = obj.settings
    from mailserver.app import NotMigrated, serve_many
    from mailserver.workers import Refused as TooMany

    try:
        raise SystemExit(serve_many(settings, workers) or 0)
    except (NotMigrated, TooMany) as exc:
        raise Refused(str(exc)) from None


@click.command("health")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for the answer.")
@pass_ctx
def health(obj: Context, timeout: float) -> None:
    """Ask the running server's /healthz (listeners.web); exit 0 when it answers ok, else 1.
    For Docker's HEALTHCHECK and monitoring scripts on the same host."""
    import ssl
    import urllib.error
    import urllib.request

    settings = obj.settings
    web = settings.listeners.web
    if web is None:
        raise Refused("listeners.web is off: no /healthz to ask")
    host = "127.0.0.1" if web.address in ("0.0.0.0", "") else ("::1" if web.address == "::" else web.address)
    host = f"[{host}]" if ":" in host else host
    url = f"{'https' if settings.web.tls else 'http'}://{host}:{web.port}/healthz"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # our own server on this host, by address: its name is not asked
    try:
        with urllib.request.urlopen(url, context=ctx if settings.web.tls else None, timeout=timeout) as r:
            body = r.read(100).decode("ascii", "replace").strip()
    except urllib.error.HTTPError as exc:
        raise Refused(f"{url}: {exc.code}") from None
    except (OSError, urllib.error.URLError) as exc:
        raise Refused(f"{url}: {getattr(exc, 'reason', exc)}") from None
    click.echo(f"{url}: {body}")


# -- database -------------------------------------------------------------------------------------

@click.group(cls=Group)
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(obj: Context) -> None:
    """Create the database or migrate its schema to this version (serve refuses an old schema)."""
    from mailserver.app import migrate

    migrate(obj.settings)
    click.echo(f"database ready: {safe_url(obj.settings.database.url)}")


@db.command("backup")
@click.argument("target", type=click.Path(path_type=Path, file_okay=False))
@pass_ctx
def db_backup(obj: Context, target: Path) -> None:
    """Copy the data directory (SQLite snapshot or pg_dump, bodies, config, keys) to TARGET while
    serving, with a checksum manifest, and verify it (R-SEC-4)."""
    from mailserver.maintenance.backup import BackupError, backup

    try:
        with progress_bars() as phases:
            report = backup(obj.settings, target, phases)
    except BackupError as e:
        raise Refused(str(e)) from None
    click.echo(f"backup in {target}: database {report.database_bytes:,} bytes, {report.files} other files "
               f"({report.file_bytes:,} bytes), {report.seconds:.1f} s; verified (MANIFEST.sha256)")
    click.echo(f"restore: mailserver db restore {target} (into an empty data directory)")


@db.command("verify")
@click.argument("source", type=click.Path(path_type=Path, file_okay=False))
def db_verify(source: Path) -> None:
    """Check a backup: every file against MANIFEST.sha256, and the database; names the file that fails."""
    from mailserver.maintenance.manifest import DamagedBackup, manifest_bytes, verify

    try:
        with progress_bars() as phases:
            verified = verify(source, phases("verify", manifest_bytes(source)))
    except DamagedBackup as e:
        raise Refused(f"damaged backup: {source / e.path}: {e.reason}") from None
    except OSError as e:
        raise Refused(f"{e.filename or source}: {e.strerror or e}") from None
    click.echo(f"backup {source}: {verified.files} files, {verified.bytes:,} bytes: OK")


@db.command("restore")
@click.argument("source", type=click.Path(path_type=Path, file_okay=False))
@pass_ctx
def db_restore(obj: Context, source: Path) -> None:
    """Put the backup SOURCE back into the configuration's data directory, which must be empty
    (PostgreSQL: into its empty database). Refused, naming the file, if the backup is damaged."""
    from mailserver.maintenance.backup import BackupError
    from mailserver.maintenance.restore import restore

    settings = obj.settings
    data_dir = settings.data_dir
    try:
        with progress_bars() as phases:
            report = restore(settings, source, data_dir, phases, config=obj.config_path)
    except BackupError as e:
        raise Refused(str(e)) from None
    click.echo(f"restored {report.kind} backup {source} into {data_dir}: {report.files} files, {report.bytes:,} bytes verified")


@db.command("status")
@pass_ctx
def db_status(obj: Context) -> None:
    """Print the schema revision; exit 1 when an upgrade is needed."""
    from storage.migrate import pending

    current, head = pending(obj.settings.database.url)
    click.echo(f"database: {safe_url(obj.settings.database.url)}")
    click.echo(f"schema: {current or 'empty'} (this version: {head})")
    if current != head:
        raise Refused("the database needs `mailserver db upgrade`")


# -- config ---------------------------------------------------------------------------------------

@click.group(cls=Group)
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def config_check(obj: Context, file: Path | None) -> None:
    """Load FILE (default: the --config file) with its profile; print a summary or the errors."""
    path = file or obj.config_path
    s = load_settings(path, obj.overrides)
    click.echo(f"OK: {path}")
    listeners = [f"{name} {l.address}:{l.port}" for name, l in s.listeners if l is not None]
    rows = [
        ("profile", s.profile), ("hostname", s.hostname), ("domains", ", ".join(s.domains)),
        ("data_dir", str(s.data_dir)), ("database", safe_url(s.database.url)),
        ("listeners", ", ".join(listeners) or "none (nothing will be served)"),
        ("tls", f"{s.tls.cert} {'(missing)' if not s.tls.cert.exists() else ''}".rstrip()),
        ("quota", f"mailbox {format_limit(s.quota.mailbox)}, attachment {format_limit(s.quota.attachment)}"),
        ("passwords", f"min {s.passwords.min_length} chars, {s.passwords.min_classes} of 4 classes"),
        ("address_rule", s.address_rule),
    ]
    for key, value in rows:
        click.echo(f"  {key + ':':<13} {value}")
