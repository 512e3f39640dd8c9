"""What every command module of the CLI shares: the error-mapping group, the context object, and
argument helpers. Command modules import this module and nothing else of ``mailserver.cli``;
``mailserver/cli/__init__.py`` adds their groups to the root group.

Exit status: 0 success, 1 a refused operation (``Refused``, with a message on stderr), 2 bad
usage (click). Configuration and store errors become one line each, never a traceback (set
MAILSERVER_DEBUG=1 to see one).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import sys
import traceback
import unicodedata
from pathlib import Path
from typing import Iterator

import click
from rich.console import Console

from config.loader import ConfigError, load_settings
from config.settings import Settings
from storage.api import Account, Organisation, Store
from storage.errors import Exists, NotFound, StoreError

DEFAULT_CONFIG = Path("data/mailserver.yaml")
CONFIG_NAME = "mailserver.yaml"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush raises no second
    BrokenPipeError (Python's documented idiom for a closed pipe)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _listener_in_use(exc: BaseException, obj: object) -> str | None:
    """``imap: 127.0.0.1:1143 is already in use`` when ``serve`` could not bind a listener
    (asyncio's OSError or Twisted's CannotListenError), else None."""
    import errno
    import re

    text = str(exc)
    if getattr(exc, "errno", None) != errno.EADDRINUSE and "Address already in use" not in text:
        return None
    address, port = getattr(exc, "interface", None), getattr(exc, "port", None)
    if port is None and (m := re.search(r"\('([^']*)', (\d+)\)", text)):
        address, port = m.group(1), int(m.group(2))
    name = "a listener"
    try:
        for key, listener in obj.settings.listeners:  # type: ignore[attr-defined]
            if listener is not None and listener.port == port and listener.address == address:
                name = key
    except Exception:  # noqa: BLE001 - naming the listener is a courtesy; the address is enough
        pass
    if port is None:
        return f"an address is already in use ({text}); is another server or a second `serve` running?"
    return f"{name}: {address}:{port} is already in use; is another server or a second `serve` running?"


class Refused(click.ClickException):
    """A refused operation: message on stderr, exit status 1."""

    exit_code = 1


class Group(click.Group):
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
        except BrokenPipeError:  # `mailserver account list | head`: the reader has gone, say nothing
            _silence_stdout()
            ctx.exit(0)
        except Exception as exc:
            if (in_use := _listener_in_use(exc, ctx.obj)) is not None:
                raise Refused(in_use) from None  # noqa: BLE001 - the operator gets one line; developers opt in
            if os.environ.get("MAILSERVER_DEBUG"):
                traceback.print_exc()
            raise Refused(f"internal error: {type(exc).__name__}: {exc} (MAILSERVER_DEBUG=1 shows the traceback)") from None


class Context:
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

    def forget_settings(self) -> None:
        """Read the configuration again at the next use (``init`` has just written it)."""
        self._settings = None

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        from mailserver.app import open_store

        store = open_store(self.settings)
        try:
            yield store
        finally:
            store.close()


pass_ctx = click.make_pass_decorator(Context)


@contextlib.contextmanager
def organisation(obj: Context) -> Iterator[Organisation]:
    with obj.store() as store:
        yield store.org


# -- arguments ------------------------------------------------------------------------------------

def find_account(store: Store | Organisation, address: str) -> Account:
    a = store.accounts.get_account(parse_address(address))
    if a is None:
        raise Refused(f"no account {address.strip()}")
    return a


def parse_address(value: str) -> str:
    from mailserver.policy.addresses import validate_local_part

    value = value.strip()
    local, at, domain = value.rpartition("@")
    if not at or not domain or "." not in domain or any(c.isspace() for c in domain):
        raise click.BadParameter(f"{value!r} is not an address like annv@example.gov.vn", param_hint="ADDRESS")
    if (problem := validate_local_part(local)) is not None:
        raise click.BadParameter(str(problem), param_hint="ADDRESS")
    return f"{local.lower()}@{domain.lower().rstrip('.')}"


def parse_name(value: str) -> str:
    name = " ".join(unicodedata.normalize("NFC", value).split())  # R-TEXT-1: precomposed letters
    if not name:
        raise click.BadParameter("the name is empty", param_hint="NAME")
    return name


def parse_when(text: str, param_hint: str) -> _dt.datetime:
    """ISO 8601 date or date-time; without an offset it is the server's local time."""
    value = text.strip()
    try:
        when = _dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 date or time such as 2026-03-01 or "
                                 "2026-03-01T08:00:00+07:00", param_hint=param_hint) from None
    return when.astimezone() if when.tzinfo is None else when


def new_password(settings: Settings, address: str, given: str | None) -> str:
    """The given password if the profile's rules accept it (R-PASS-2/3), else a generated one."""
    from mailserver.policy.passwords import check_password, generate_password

    rules = settings.passwords
    if given is None:
        return generate_password(max(12, rules.min_length))
    given = unicodedata.normalize("NFC", given)  # checked as stored (mailserver.accounts.auth hashes NFC)
    reasons = check_password(given, account_name=address if rules.reject_account_name else "",
                             min_length=rules.min_length, min_classes=rules.min_classes)
    if reasons:
        raise Refused(f"password refused (profile {settings.profile}): {' '.join(r.en for r in reasons)}")
    return given


def require_schema(obj: Context) -> None:
    """The lifecycle table comes with migration 0007_lifecycle: say so instead of an SQL error."""
    from mailserver.app import NotMigrated, check_migrated

    try:
        check_migrated(obj.settings)
    except NotMigrated as exc:
        raise Refused(str(exc)) from None


# -- output ---------------------------------------------------------------------------------------

def confirm(yes: bool, question: str) -> None:
    """Ask before something that cannot be undone: ``--yes`` skips it; without a terminal to
    ask on (a script, a pipe), ``--yes`` is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise Refused(f"{question} Not run on a terminal: add --yes to confirm.")
    click.confirm(question, abort=True)


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def console() -> Console:
    # Scripts read the table from a pipe: do not cut it at 80 columns there.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def show_time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


def safe_url(url: str) -> str:
    """The database URL without its password, for printing."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if sep and at and ":" in creds:
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def short_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- progress -------------------------------------------------------------------------------------

@contextlib.contextmanager
def progress_bars() -> Iterator:
    """Progress bars on stderr while a long command works (backup, restore, verify, ``quota
    recalc``, ``account import``); nothing when stderr is not a terminal (scripts, logs).

    Yields ``phases(description, total) -> advance(n)``: a new bar per phase, ``total`` None for
    a bar that only counts."""
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    err = Console(stderr=True)

    def make(unit: str):
        count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
        return Progress(TextColumn("{task.description:<10}"), BarColumn(), count, TimeRemainingColumn(),
                        console=err, transient=False, disable=not err.is_terminal)

    bars: dict[str, Progress] = {}

    def phases(description: str, total: int | None, unit: str = "bytes"):
        if unit not in bars:
            bars[unit] = make(unit)
            bars[unit].start()
        bar = bars[unit]
        task = bar.add_task(description, total=total)
        return lambda n=1: bar.advance(task, n)

    try:
        yield phases
    finally:
        for bar in bars.values():
            bar.stop()


# -- list commands: --unit, --state, --json, --csv ------------------------------------------------

def list_options(states: tuple[str, ...], state_help: str):
    """The filters and formats every list command shares (``account list``, ``quota report``,
    ``queue list``): ``--unit CODE`` (that unit and the units below it), ``--state`` (repeatable),
    ``--json`` / ``--csv`` instead of the table, for scripts and spreadsheets."""

    def decorate(f):
        f = click.option("--csv", "as_csv", is_flag=True, help="CSV (UTF-8, a header row) instead of the table.")(f)
        f = click.option("--json", "as_json", is_flag=True, help="JSON (an array of objects) instead of the table.")(f)
        f = click.option("--state", "states", multiple=True, type=click.Choice(states), help=state_help)(f)
        f = click.option("--unit", metavar="CODE", help="Only this unit and the units below it.")(f)
        return f

    return decorate


def unit_account_ids(org: Organisation, code: str) -> set[int]:
    """Accounts of unit ``code`` and of every unit below it: their unit mailboxes and the people
    whose profile names one of them."""
    unit = org.get_unit(code)
    if unit is None:
        raise Refused(f"no unit {code.strip()} (see `mailserver unit list`)")
    units = org.list_units()  # parents before children
    inside = {unit.id}
    for u in units:
        if u.parent_id in inside:
            inside.add(u.id)
    ids = {u.account.id for u in units if u.id in inside}
    for account in org.accounts.list_accounts():
        profile = org.get_profile(account.id)
        if profile is not None and profile.unit_id in inside:
            ids.add(account.id)
    return ids


def emit_rows(rows: list[dict], as_json: bool, as_csv: bool) -> bool:
    """Print ``rows`` as JSON or CSV when asked (True), else leave the table to the caller (False)."""
    if as_json and as_csv:
        raise click.UsageError("--json and --csv: choose one")
    if as_json:
        import json

        click.echo(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
        return True
    if as_csv:
        import csv
        import io

        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
        return True
    return False


def iso(value) -> str | None:
    return value.isoformat(timespec="seconds") if value else None
