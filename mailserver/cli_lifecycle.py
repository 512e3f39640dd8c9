"""Account lifecycle commands (R-LIFE-1..5, R-PASS-1/3): ``account revoke|reissue|leave|exempt``
and ``lifecycle run``. Arguments only; the work is the store's lifecycle role (storage.api.Lifecycle) and mailserver.lifecycle.

Revoking keeps the mailbox and its mail: the account cannot log in (IMAP, POP3, submission) and
mail to it is refused at RCPT with 550 5.2.1 (storage.api LOGIN_STATES / RECEIVE_STATES). It is
given back with ``account reissue`` (a new initial password, the leaving notice forgotten, the
inactivity clock restarted): lamdong art. 7.2d "can be re-issued on request". ``account unlock``
is for locked accounts only, as before.
"""

from __future__ import annotations

import datetime as _dt

import click

from mailserver.cli import Refused, _account, _Context, _Group, _new_password, pass_ctx
from storage.api import AccountKind, AccountState

_REVOCABLE = frozenset({AccountState.ACTIVE, AccountState.MUST_CHANGE_PASSWORD, AccountState.LOCKED})


def parse_when(text: str, param_hint: str) -> _dt.datetime:
    """ISO 8601 date or date-time; without an offset it is the server's local time."""
    value = text.strip()
    try:
        when = _dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 date or time such as 2026-03-01 or "
                                 "2026-03-01T08:00:00+07:00", param_hint=param_hint) from None
    return when.astimezone() if when.tzinfo is None else when


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def require_schema(obj: _Context) -> None:
    """The lifecycle table comes with migration 0007_lifecycle: say so instead of an SQL error."""
    from mailserver.app import NotMigrated, check_migrated

    try:
        check_migrated(obj.settings)
    except NotMigrated as exc:
        raise Refused(str(exc)) from None


@click.command("revoke")
@click.argument("address")
@click.option("--reason", default="", help="Why (the unit's notice, leaving, a violation); kept in the audit log.")
@pass_ctx
def account_revoke(obj: _Context, address: str, reason: str) -> None:
    """Revoke an account (R-LIFE-1): no logins, mail to it refused, its mail kept."""
    require_schema(obj)

    reason = " ".join(reason.split())
    with obj.store() as store:
        a = _account(store, address)
        if a.state not in _REVOCABLE:
            raise Refused(f"{a.address} is already {a.state.value}")
        if not store.lifecycle.change_state(a.id, a.state, AccountState.REVOKED, f"operator: {reason}".rstrip(": "),
                                             now=_now(), action="revoke", detail=reason or "revoked by the operator"):
            raise Refused(f"{a.address} changed state meanwhile; try again")
        headed = _units_headed(store, a.id)
    click.echo(f"{a.address}: revoked")
    for code in headed:
        click.echo(f"note: {a.address} heads unit {code}; hand it over with `mailserver unit handover {code} --to ADDRESS`")


def _units_headed(store, account_id: int) -> list[str]:

    return [u.code for u in store.org.list_units() if u.head is not None and u.head.id == account_id]


@click.command("reissue")
@click.argument("address")
@click.option("--password", help="New initial password (default: a random one, printed).")
@click.option("--active", is_flag=True, help="Do not ask the user to change it at first login.")
@pass_ctx
def account_reissue(obj: _Context, address: str, password: str | None, active: bool) -> None:
    """Give a revoked account back, with its mail (lamdong art. 7.2d): a new password, the
    leaving notice forgotten, the inactivity clock restarted."""
    require_schema(obj)
    from mailserver.auth import hash_password

    with obj.store() as store:
        a = _account(store, address)
        if a.state is not AccountState.REVOKED:
            raise Refused(f"{a.address} is {a.state.value}, not revoked")
        plain = pw_hash = None
        state = AccountState.ACTIVE
        if a.kind is not AccountKind.GROUP:  # a group never logs in
            plain = _new_password(obj.settings, a.address, password)
            pw_hash = hash_password(obj.settings.passwords, plain)
            state = AccountState.ACTIVE if active else AccountState.MUST_CHANGE_PASSWORD  # R-PASS-1
        if not store.lifecycle.change_state(a.id, AccountState.REVOKED, state, "reissued", now=_now(),
                                             action="reissue", password_hash=pw_hash, reactivate=True,
                                             clear_leaving=True):
            raise Refused(f"{a.address} changed state meanwhile; try again")
    click.echo(f"address: {a.address}")
    if plain is not None and password is None:
        click.echo(f"password: {plain}")
    click.echo(f"state: {state.value}")


@click.command("leave")
@click.argument("address")
@click.option("--notice", "notice", metavar="DATE", help="When the unit's written notice was received "
              "(default: now, unless only --left is given).")
@click.option("--left", "left", metavar="DATE", help="Date of the leaving decision, when known (R-LIFE-4).")
@click.option("--keep", is_flag=True, help="A former head keeps the mailbox on request (most art. 18.3).")
@click.option("--cancel", is_flag=True, help="Forget the notice and the leaving date.")
@pass_ctx
def account_leave(obj: _Context, address: str, notice: str | None, left: str | None, keep: bool, cancel: bool) -> None:
    """Record that the owner leaves (R-LIFE-2/4): `lifecycle run` revokes the account when the
    profile's deadline after the notice (or the leaving date) has passed."""
    require_schema(obj)
    from mailserver.lifecycle import rules_from
    from mailserver.policy.lifecycle import add_months

    if cancel and (notice or left or keep):
        raise click.UsageError("--cancel takes no other option")
    notice_at = parse_when(notice, "--notice") if notice else None
    left_at = parse_when(left, "--left") if left else None
    if not cancel and notice_at is None and left_at is None:
        notice_at = _now()
    with obj.store() as store:
        a = _account(store, address)
        if a.state is AccountState.DELETED:
            raise Refused(f"{a.address} is deleted")
        store.lifecycle.set_leaving(a.id, notice_at=notice_at, left_at=left_at, keep=keep)
    if cancel:
        click.echo(f"{a.address}: leaving notice cancelled")
        return
    rules = rules_from(obj.settings)
    dues = []
    if notice_at is not None and rules.revoke_after_notice_days is not None:
        dues.append(notice_at + _dt.timedelta(days=rules.revoke_after_notice_days))
    if not keep and notice_at is not None and rules.leaver_revoke_months is not None:
        dues.append(add_months(notice_at, rules.leaver_revoke_months))
    if not keep and left_at is not None and rules.leaver_revoke_max_months is not None:
        dues.append(add_months(left_at, rules.leaver_revoke_max_months))
    click.echo(f"{a.address}: notice {_iso(notice_at)}, left {_iso(left_at)}{', kept on request' if keep else ''}")
    if dues:
        click.echo(f"revoked by `lifecycle run` from {_iso(min(dues))} (profile {obj.settings.profile})")
    else:
        click.echo(f"no automatic revocation in profile {obj.settings.profile}: revoke it with `account revoke`")


def _iso(when: _dt.datetime | None) -> str:
    return when.astimezone().isoformat(timespec="seconds") if when else "-"


@click.command("exempt")
@click.argument("address")
@click.option("--off", is_flag=True, help="Apply the inactivity rules to it again.")
@pass_ctx
def account_exempt(obj: _Context, address: str, off: bool) -> None:
    """Keep an account out of the inactivity rules (a service account, a mailbox kept on request)."""
    require_schema(obj)

    with obj.store() as store:
        a = _account(store, address)
        store.lifecycle.set_exempt(a.id, not off)
    click.echo(f"{a.address}: {'subject to' if off else 'exempt from'} the inactivity rules")


@click.group(cls=_Group)
def lifecycle() -> None:
    """Account lifecycle deadlines of the profile (R-LIFE-*, R-PASS-1/3)."""


@lifecycle.command("run")
@click.option("--dry-run", is_flag=True, help="List the changes due; change nothing, send nothing.")
@click.option("--now", "now_text", metavar="ISO8601", help="Decide as if it were this time (preview, tests).")
@pass_ctx
def lifecycle_run(obj: _Context, dry_run: bool, now_text: str | None) -> None:
    """Lock, revoke or delete the accounts whose deadline has passed; one line per change
    (address, from -> to, rule, deadline). The server also runs it daily at lifecycle.run_at."""
    require_schema(obj)
    from mailserver.lifecycle import run_lifecycle

    now = parse_when(now_text, "--now") if now_text else _now()
    with obj.store() as store:
        changes = run_lifecycle(store, obj.settings, dry_run=dry_run, now=now)
    for change in changes:
        click.echo(change.line(dry_run))
    verb = "would change" if dry_run else "changed"
    click.echo(f"{verb} {len(changes)} account(s) (profile {obj.settings.profile})")


def register(cli_group: click.Group) -> None:
    """Add the account lifecycle commands and ``lifecycle`` to the main group (idempotent)."""
    account = cli_group.commands["account"]
    for cmd in (account_revoke, account_reissue, account_leave, account_exempt):
        if cmd.name not in account.commands:
            account.add_command(cmd)
    if lifecycle.name not in cli_group.commands:
        cli_group.add_command(lifecycle)

