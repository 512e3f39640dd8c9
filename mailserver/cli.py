"""The operator CLI (DESIGN.md "Operator interface"): arguments in, calls out, one-line errors.

Exit status: 0 success, 1 a refused operation (with a message on stderr), 2 bad usage (click).
Configuration and store errors become one line each, never a traceback (set MAILSERVER_DEBUG=1
to see one). The server itself is built by ``mailserver.app``; this module only parses arguments.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
import unicodedata
from pathlib import Path
from typing import Iterator

import click
from rich import box
from rich.console import Console
from rich.table import Table

from config.loader import PROFILES, ConfigError, load_settings
from config.sizes import format_limit
from config.settings import Settings
from storage.api import LOGIN_STATES, Account, AccountState, Store
from storage.errors import Exists, NotFound, StoreError

DEFAULT_CONFIG = Path("data/mailserver.yaml")
CONFIG_NAME = "mailserver.yaml"


class Refused(click.ClickException):
    """A refused operation: message on stderr, exit status 1."""

    exit_code = 1


class _Group(click.Group):
    """Turns configuration, store and unexpected errors into one line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise Refused(str(exc)) from None
        except NotFound as exc:
            raise Refused(f"not found: {exc.detail or 'no such account'}") from None
        except Exists as exc:
            raise Refused(f"already exists: {exc.detail}" if exc.detail else "already exists") from None
        except StoreError as exc:
            raise Refused(f"{exc.kind.value.lower()}: {exc.detail or 'the store refused the operation'}") from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the operator gets one line; developers opt in
            if os.environ.get("MAILSERVER_DEBUG"):
                traceback.print_exc()
            raise Refused(f"internal error: {type(exc).__name__}: {exc} (MAILSERVER_DEBUG=1 shows the traceback)") from None


class _Context:
    """What every command needs: where the config is and whether the operator named it."""

    def __init__(self, config_path: Path, explicit: bool, overrides: dict | None = None) -> None:
        self.config_path = config_path
        self.explicit = explicit
        self.overrides = overrides or {}
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path, self.overrides)
        return self._settings

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        from mailserver.app import open_store

        store = open_store(self.settings)
        try:
            yield store
        finally:
            store.close()


pass_ctx = click.make_pass_decorator(_Context)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              envvar="MAILSERVER_CONFIG", default=DEFAULT_CONFIG, show_default=True,
              help="Configuration file (default: $MAILSERVER_CONFIG, else ./data/mailserver.yaml).")
@click.option("--set", "settings_", metavar="KEY=VALUE", multiple=True, callback=lambda c, p, v: _parse_sets(v),
              help="Override one setting for this run, e.g. --set listeners.smtp.port=25 (repeatable).")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, settings_: dict) -> None:
    """Mail server for Vietnamese public agencies: SMTP, IMAP4 and POP3 over one store."""
    explicit = ctx.get_parameter_source("config_path") is click.core.ParameterSource.COMMANDLINE
    ctx.obj = _Context(config_path, explicit, settings_)


def _parse_sets(values: tuple[str, ...]) -> dict:
    """``listeners.smtp.port=25`` → ``{"listeners.smtp.port": 25}``; values are read as YAML."""
    import yaml

    result = {}
    for item in values:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        try:
            result[key.strip()] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise click.BadParameter(f"{item!r}: the value is not valid YAML", param_hint="--set") from None
    return result


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``mailserver``) and ``python -m mailserver``."""
    cli.main(args=argv, prog_name="mailserver")


# -- init / serve ---------------------------------------------------------------------------------

@cli.command()
@click.option("--profile", type=click.Choice(PROFILES), default="none", show_default=True,
              help="Regulation preset (quotas, password rules, lifecycle, address rule).")
@click.option("--domain", "domains", multiple=True, help="Local mail domain (repeatable; default: the profile's).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the config, database and certificates (default ./data).")
@click.option("--hostname", help="Server name for greetings and the certificate (default mail.<first domain>).")
@click.option("--listen", default="127.0.0.1", show_default=True, help="Address every listener binds to.")
@pass_ctx
def init(obj: _Context, profile: str, domains: tuple[str, ...], data_dir: Path | None,
         hostname: str | None, listen: str) -> None:
    """Write a commented config, a self-signed certificate and an empty, migrated database."""
    _initialise(obj, profile=profile, domains=list(domains), data_dir=data_dir, hostname=hostname, listen=listen)


def _initialise(obj: _Context, *, profile: str = "none", domains: list[str] | None = None,
                data_dir: Path | None = None, hostname: str | None = None, listen: str = "127.0.0.1") -> None:
    from config.defaults import render_config
    from config.loader import PROFILE_DIR
    from mailserver.tls import ensure_certificate

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
    domains = [d.strip().lower().rstrip(".") for d in domains]
    hostname = hostname or f"mail.{domains[0]}"
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
            click.echo(f"created a self-signed certificate for {settings.hostname}: {_short(settings.tls.cert)}")
        from mailserver.app import migrate, open_store

        migrate(settings)
        store = open_store(settings)
        try:
            for domain in settings.domains:
                if not store.is_local_domain(domain):
                    store.add_domain(domain)
        finally:
            store.close()
        if config.exists():
            raise Refused(f"{config} appeared while initialising; not overwriting it")
        os.replace(pending, config)
    finally:
        pending.unlink(missing_ok=True)
    obj._settings = None
    click.echo(f"wrote {_short(config)} (profile {profile}, domains {', '.join(domains)})")
    click.echo(f"database ready: {_safe_url(settings.database.url)}")
    click.echo(f'next: mailserver account add "Nguyễn Văn An" --address annv@{domains[0]}')


@cli.command()
@pass_ctx
def serve(obj: _Context) -> None:
    """Run SMTP, IMAP4 and POP3 (first start without --config: init ./data with defaults)."""
    if not obj.explicit and not obj.config_path.exists():
        click.echo(f"{_short(obj.config_path)} not found: initialising with defaults", err=True)
        _initialise(obj)
    settings = obj.settings
    from mailserver.app import NotMigrated, serve as run

    try:
        raise SystemExit(run(settings) or 0)
    except NotMigrated as exc:
        raise Refused(str(exc)) from None


# -- database -------------------------------------------------------------------------------------

@cli.group(cls=_Group)
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(obj: _Context) -> None:
    """Create the database or migrate its schema to this version (serve refuses an old schema)."""
    from mailserver.app import migrate

    migrate(obj.settings)
    click.echo(f"database ready: {_safe_url(obj.settings.database.url)}")


@db.command("backup")
@click.argument("target", type=click.Path(path_type=Path, file_okay=False))
@pass_ctx
def db_backup(obj: _Context, target: Path) -> None:
    """Copy the data directory (SQLite snapshot, bodies, config, keys) to TARGET, while serving."""
    from mailserver.backup import BackupError, backup

    try:
        report = backup(obj.settings, target)
    except BackupError as e:
        raise Refused(str(e)) from None
    click.echo(f"backup in {target}: database {report.database_bytes:,} bytes, {report.files} other files "
               f"({report.file_bytes:,} bytes), {report.seconds:.1f} s")
    click.echo("restore: stop the server and put this directory in place of the data directory")


@db.command("status")
@pass_ctx
def db_status(obj: _Context) -> None:
    """Print the schema revision; exit 1 when an upgrade is needed."""
    from storage.migrate import pending

    current, head = pending(obj.settings.database.url)
    click.echo(f"database: {_safe_url(obj.settings.database.url)}")
    click.echo(f"schema: {current or 'empty'} (this version: {head})")
    if current != head:
        raise Refused("the database needs `mailserver db upgrade`")


# -- config ---------------------------------------------------------------------------------------

@cli.group(cls=_Group)
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def config_check(obj: _Context, file: Path | None) -> None:
    """Load FILE (default: the --config file) with its profile; print a summary or the errors."""
    path = file or obj.config_path
    s = load_settings(path, obj.overrides)
    click.echo(f"OK: {path}")
    listeners = [f"{name} {l.address}:{l.port}" for name, l in s.listeners if l is not None]
    rows = [
        ("profile", s.profile), ("hostname", s.hostname), ("domains", ", ".join(s.domains)),
        ("data_dir", str(s.data_dir)), ("database", _safe_url(s.database.url)),
        ("listeners", ", ".join(listeners) or "none (nothing will be served)"),
        ("tls", f"{s.tls.cert} {'(missing)' if not s.tls.cert.exists() else ''}".rstrip()),
        ("quota", f"mailbox {_size(s.quota.mailbox)}, attachment {_size(s.quota.attachment)}"),
        ("passwords", f"min {s.passwords.min_length} chars, {s.passwords.min_classes} of 4 classes"),
        ("address_rule", s.address_rule),
    ]
    for key, value in rows:
        click.echo(f"  {key + ':':<13} {value}")


# -- accounts -------------------------------------------------------------------------------------

@cli.group(cls=_Group)
def account() -> None:
    """Create and manage mail accounts."""


@account.command("add")
@click.argument("name")
@click.option("--address", help="The address (default: derived from NAME by the profile's address_rule, R-ADDR-*).")
@click.option("--password", help="Initial password (default: a random one, printed).")
@click.option("--active", is_flag=True, help="Service account: no password change required at first login.")
@pass_ctx
def account_add(obj: _Context, name: str, address: str | None, password: str | None, active: bool) -> None:
    """Create a personal account. NAME is the display name, e.g. "Nguyễn Văn An"."""
    from mailserver.auth import hash_password
    from mailserver.policy.addresses import AddressPolicyError, derive_local_part

    display_name = _display_name(name)
    settings = obj.settings
    with obj.store() as store:
        if address is None:
            domain = settings.domains[0]
            taken = [a.address.partition("@")[0] for a in store.list_accounts() if a.address.endswith("@" + domain)]
            try:
                address = f"{derive_local_part(display_name, taken, settings.address_rule)}@{domain}"
            except AddressPolicyError as exc:
                raise Refused(f"{exc} (give the address with --address)") from None
        else:
            address = _address(address)
        if not store.is_local_domain(address.rpartition("@")[2]):
            raise Refused(f"{address.rpartition('@')[2]} is not a local domain (add it to domains: in the config)")
        plain = _new_password(settings, address, password)
        state = AccountState.ACTIVE if active else AccountState.MUST_CHANGE_PASSWORD  # R-PASS-1
        try:
            created = store.create_account(address, display_name, hash_password(settings.passwords, plain), state=state)
        except Exists:
            raise Refused(f"{address} already exists") from None
    click.echo(f"address: {created.address}")
    if password is None:
        click.echo(f"password: {plain}")
    click.echo(f"state: {created.state.value}")


@account.command("list")
@pass_ctx
def account_list(obj: _Context) -> None:
    """List all accounts."""
    with obj.store() as store:
        accounts = store.list_accounts()
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("address", "name", "kind", "state", "used", "quota", "last login"):
        table.add_column(column, no_wrap=column in ("address", "state"))
    for a in sorted(accounts, key=lambda a: a.address):
        table.add_row(a.address, a.display_name, a.kind.value, a.state.value, _size(a.used_bytes),
                      _size(a.quota_bytes if a.quota_bytes is not None else obj.settings.quota.mailbox),
                      _when(a.last_login_at))
    _console().print(table)
    click.echo(f"{len(accounts)} account(s)")


@account.command("show")
@click.argument("address")
@pass_ctx
def account_show(obj: _Context, address: str) -> None:
    """Show one account and its folders."""
    with obj.store() as store:
        a = _account(store, address)
        folders = [store.folder_status(f.id) for f in store.list_folders(a.id)]
    quota = a.quota_bytes if a.quota_bytes is not None else obj.settings.quota.mailbox
    for key, value in (
        ("address", a.address), ("name", a.display_name), ("kind", a.kind.value), ("state", a.state.value),
        ("created", _when(a.created_at)), ("password changed", _when(a.password_changed_at)),
        ("last login", _when(a.last_login_at)),
        ("used", f"{_size(a.used_bytes)} in {a.used_messages} message(s) of {_size(quota)}"),
    ):
        click.echo(f"{key + ':':<18}{value}")
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("folder", "messages", "unseen", "size"):
        table.add_column(column, no_wrap=True, justify="left" if column == "folder" else "right")
    for st in folders:
        table.add_row(st.folder.name, str(st.messages), str(st.unseen), _size(st.size))
    _console().print(table)


@account.command("passwd")
@click.argument("address")
@click.option("--password", help="New password (default: a random one, printed).")
@click.option("--active", is_flag=True, help="Do not ask the user to change it at next login.")
@pass_ctx
def account_passwd(obj: _Context, address: str, password: str | None, active: bool) -> None:
    """Reset a password (R-PASS-4); the user must change it at next login unless --active."""
    from mailserver.auth import hash_password

    with obj.store() as store:
        a = _account(store, address)
        plain = _new_password(obj.settings, a.address, password)
        # A locked or revoked account stays so: a reset is not an unlock.
        state = None
        if a.state in LOGIN_STATES:
            state = AccountState.ACTIVE if active else AccountState.MUST_CHANGE_PASSWORD  # R-PASS-1
        store.set_password(a.id, hash_password(obj.settings.passwords, plain), state=state)
        after = store.get_account_by_id(a.id)
    click.echo(f"address: {a.address}")
    if password is None:
        click.echo(f"password: {plain}")
    click.echo(f"state: {after.state.value if after else (state or a.state).value}")


@account.command("lock")
@click.argument("address")
@pass_ctx
def account_lock(obj: _Context, address: str) -> None:
    """Lock an account: no logins; mail is still received (R-ACC-2)."""
    with obj.store() as store:
        a = _account(store, address)
        if a.state not in LOGIN_STATES:
            raise Refused(f"{a.address} is {a.state.value}; only an active account can be locked")
        import datetime as _dt

        from storage.lifecycle import Lifecycle

        # Through the lifecycle record, so the lock's reason and time are known and audited.
        if not Lifecycle(store).change_state(a.id, a.state, AccountState.LOCKED, "operator", action="lock",
                                             now=_dt.datetime.now(_dt.UTC), detail="locked by the operator"):
            raise Refused(f"{a.address} changed state meanwhile; try again")
    click.echo(f"{a.address}: locked")


@account.command("unlock")
@click.argument("address")
@click.option("--active", is_flag=True, help="Do not ask the user to set a new password at next login.")
@pass_ctx
def account_unlock(obj: _Context, address: str, active: bool) -> None:
    """Unlock a locked account. The user must set a new password at next login unless --active:
    a lock follows a security problem (R-ACC-2) or an unchanged initial password (R-PASS-3)."""
    import datetime as _dt

    from mailserver.lifecycle import unlock_refusal
    from storage.lifecycle import Lifecycle

    with obj.store() as store:
        a = _account(store, address)
        if a.state is not AccountState.LOCKED:
            raise Refused(f"{a.address} is {a.state.value}, not locked")
        now = _dt.datetime.now(_dt.UTC)
        if (why := unlock_refusal(store, obj.settings, a.id, now)) is not None:
            raise Refused(f"{a.address} is {why}")
        state = AccountState.ACTIVE if active else AccountState.MUST_CHANGE_PASSWORD
        # Recorded as a re-activation: the inactivity clock restarts (R-LIFE-4/5), audited.
        if not Lifecycle(store).change_state(a.id, AccountState.LOCKED, state, "unlocked", now=now,
                                             action="unlock", reactivate=True):
            raise Refused(f"{a.address} changed state meanwhile; try again")
    click.echo(f"{a.address}: {state.value}")


@account.command("delete")
@click.argument("address")
@pass_ctx
def account_delete(obj: _Context, address: str) -> None:
    """Delete an account with all its folders and messages."""
    with obj.store() as store:
        a = _account(store, address)
        store.delete_account(a.id)
    click.echo(f"{a.address}: deleted")


# -- helpers --------------------------------------------------------------------------------------

def _account(store: Store, address: str) -> Account:
    a = store.get_account(_address(address))
    if a is None:
        raise Refused(f"no account {address.strip()}")
    return a


def _address(value: str) -> str:
    from mailserver.policy.addresses import validate_local_part

    value = value.strip()
    local, at, domain = value.rpartition("@")
    if not at or not domain or "." not in domain or any(c.isspace() for c in domain):
        raise click.BadParameter(f"{value!r} is not an address like annv@example.gov.vn", param_hint="ADDRESS")
    if (problem := validate_local_part(local)) is not None:
        raise click.BadParameter(str(problem), param_hint="ADDRESS")
    return f"{local.lower()}@{domain.lower().rstrip('.')}"


def _display_name(value: str) -> str:
    name = " ".join(unicodedata.normalize("NFC", value).split())  # R-TEXT-1: precomposed letters
    if not name:
        raise click.BadParameter("the name is empty", param_hint="NAME")
    return name


def _new_password(settings: Settings, address: str, given: str | None) -> str:
    """The given password if the profile's rules accept it (R-PASS-2/3), else a generated one."""
    from mailserver.policy.passwords import check_password, generate_password

    rules = settings.passwords
    if given is None:
        return generate_password(max(12, rules.min_length))
    given = unicodedata.normalize("NFC", given)  # checked as stored (mailserver.auth hashes NFC)
    reasons = check_password(given, account_name=address if rules.reject_account_name else "",
                             min_length=rules.min_length, min_classes=rules.min_classes)
    if reasons:
        raise Refused(f"password refused (profile {settings.profile}): {' '.join(r.en for r in reasons)}")
    return given


def _console() -> Console:
    # Scripts read the table from a pipe: do not cut it at 80 columns there.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


_size = format_limit  # the one size formatter (config/sizes.py); None: unlimited


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


def _safe_url(url: str) -> str:
    """The database URL without its password, for printing."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if sep and at and ":" in creds:
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def _short(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


from mailserver.cli_org import register as _register_org  # noqa: E402 - issue 4: unit, group, account import, directory

_register_org(cli)

from mailserver.cli_quota import register as _register_quota  # noqa: E402 - issue 5: quota show|set|class|report|recalc, retention run

_register_quota(cli)


from mailserver.cli_queue import register as _register_queue  # noqa: E402 - queue, dkim keygen (issue 7)

_register_queue(cli)

from mailserver.cli_lifecycle import register as _register_lifecycle  # noqa: E402 - account revoke|reissue|leave|exempt, lifecycle run

_register_lifecycle(cli)
