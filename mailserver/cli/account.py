"""``account add|list|show|passwd|lock|unlock|delete|import|revoke|reissue|leave|exempt|move|rename``.

Revoking keeps the mailbox and its mail: the account cannot log in (IMAP, POP3, submission) and
mail to it is refused at RCPT with 550 5.2.1 (storage.api LOGIN_STATES / RECEIVE_STATES). It is
given back with ``account reissue`` (a new initial password, the leaving notice forgotten, the
inactivity clock restarted): lamdong art. 7.2d "can be re-issued on request". ``account unlock``
is for locked accounts only. The lifecycle rules themselves run in ``lifecycle run``.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import click
from rich import box
from rich.table import Table

from config.sizes import format_limit
from mailserver.cli.base import (
    progress_bars,
    emit_rows,
    iso,
    list_options,
    unit_account_ids,
    Context,
    Group,
    Refused,
    confirm,
    console,
    find_account,
    new_password,
    organisation,
    parse_address,
    parse_name,
    parse_when,
    pass_ctx,
    require_schema,
    show_time,
    utc_now as _now,
)
from storage.api import LOGIN_STATES, AccountKind, AccountState
from storage.errors import Exists

_REVOCABLE = frozenset({AccountState.ACTIVE, AccountState.MUST_CHANGE_PASSWORD, AccountState.LOCKED})


@click.group(cls=Group)
def account() -> None:
    """Create and manage mail accounts."""


@account.command("add")
@click.argument("name")
@click.option("--address", help="The address (default: derived from NAME by the profile's address_rule, R-ADDR-*).")
@click.option("--password", help="Initial password (default: a random one, printed).")
@click.option("--password-stdin", is_flag=True, help="Read the initial password from the first line of standard input.")
@click.option("--active", is_flag=True, help="Service account: no password change required at first login.")
@click.option("--unit", "unit_code", help="The person's unit (code or unit address): recorded, and used by the one-mailbox check.")
@click.option("--another-person", is_flag=True,
              help="A different person with the same name in the same unit: create the mailbox anyway (R-BOX-1).")
@pass_ctx
def account_add(obj: Context, name: str, address: str | None, password: str | None, password_stdin: bool,
                unit_code: str | None, active: bool, another_person: bool) -> None:
    """Create a personal account. NAME is the display name, e.g. "Nguyễn Văn An".

    A person has one personal mailbox (R-BOX-1): the same name in the same unit is refused
    unless --another-person says it is someone else.

    \b
    Example:
      mailserver account add "Nguyễn Văn An" --unit vp
    """
    from mailserver.accounts.auth import hash_password
    from mailserver.policy.addresses import AddressPolicyError, derive_local_part
    from mailserver.policy.persons import Holder, refusal, same_person

    if password_stdin:
        if password is not None:
            raise click.BadParameter("give --password or --password-stdin, not both", param_hint="--password-stdin")
        password = click.get_text_stream("stdin").readline().rstrip("\r\n")
        if not password:
            raise Refused("no password on standard input")
    display_name = parse_name(name)
    settings = obj.settings
    with obj.store() as store:
        unit = None
        if unit_code is not None:
            unit = store.org.get_unit(unit_code.strip())
            if unit is None:
                raise Refused(f"no unit {unit_code.strip()!r} (see `mailserver unit list`)")
        if address is None:
            domain = settings.domains[0]
            taken = [a.address.partition("@")[0] for a in store.accounts.list_accounts() if a.address.endswith("@" + domain)]
            try:
                address = f"{derive_local_part(display_name, taken, settings.address_rule)}@{domain}"
            except AddressPolicyError as exc:
                raise Refused(f"{exc} (give the address with --address)") from None
        else:
            address = parse_address(address)
        if not store.accounts.is_local_domain(address.rpartition("@")[2]):
            raise Refused(f"{address.rpartition('@')[2]} is not a local domain (add it to domains: in the config)")
        if not another_person and store.accounts.get_account(address) is None:  # taken: said below
            namesakes = [a for a in store.accounts.list_accounts()
                         if a.kind is AccountKind.PERSONAL and same_person(display_name, None, [Holder(a.address, a.display_name or "", None)])]
            holders = []
            for a in namesakes:
                profile = store.org.get_profile(a.id)
                holders.append(Holder(a.address, a.display_name or "", profile.unit_id if profile else None))
            if (holder := same_person(display_name, unit.id if unit else None, holders)) is not None:
                raise Refused(refusal(display_name, holder, unit.code if unit else None))
        plain = new_password(settings, address, password)
        state = AccountState.ACTIVE if active else AccountState.MUST_CHANGE_PASSWORD  # R-PASS-1
        if store.accounts.get_account(address) is not None:
            raise Refused(f"{address} already exists")
        try:
            if unit is None or another_person:  # a namesake the operator vouched for: no person-key check
                created = store.accounts.create_account(address, display_name, hash_password(settings.passwords, plain), state=state)
            else:
                from storage.api import NewPerson

                (created,) = store.org.create_people([NewPerson(address, display_name, hash_password(settings.passwords, plain),
                                                                unit.id, state=state)])
        except Exists as exc:
            raise Refused(str(exc)) from None
        if unit is not None:
            store.org.set_profile(created.id, unit_id=unit.id)
    click.echo(f"address: {created.address}")
    if password is None:
        click.echo(f"password: {plain}")
    if unit is not None:
        click.echo(f"unit: {unit.code}")
    click.echo(f"state: {created.state.value}")


@account.command("move")
@click.argument("address")
@click.option("--unit", "unit_code", required=True, metavar="CODE", help="The unit the person moves to.")
@pass_ctx
def account_move(obj: Context, address: str, unit_code: str) -> None:
    """Move a person to another unit (R-LIFE-1: a transfer); title and phones are kept; audited."""
    with obj.store() as store:
        a = find_account(store, address)
        if a.kind != AccountKind.PERSONAL:
            raise Refused(f"{a.address} is a {a.kind.value} mailbox; only a person moves between units")
        unit = store.org.get_unit(unit_code.strip())
        if unit is None:
            raise Refused(f"no unit {unit_code.strip()!r} (see `mailserver unit list`)")
        profile = store.org.get_profile(a.id)
        before = store.org.unit_by_id(profile.unit_id) if profile is not None and profile.unit_id else None
        if before is not None and before.id == unit.id:
            raise Refused(f"{a.address} is already in unit {unit.code}")
        store.org.set_profile(a.id, unit_id=unit.id, title=profile.title if profile else "",
                              phone=profile.phone if profile else "", mobile=profile.mobile if profile else "")
        store.org.record_access(None, a.id, "move", f"unit {before.code if before else '-'} -> {unit.code}")
    click.echo(f"{a.address}: unit {before.code if before else '(none)'} -> {unit.code}")


@account.command("rename")
@click.argument("address")
@click.argument("new_address")
@click.option("--keep-old-days", type=click.IntRange(min=0),
              help="Days the old address still reaches the account (default: accounts.rename_alias_days; 0: not kept).")
@pass_ctx
def account_rename(obj: Context, address: str, new_address: str, keep_old_days: int | None) -> None:
    """Give an account a new address (a name corrected, a transfer); mail, folders and password
    stay, and the old address reaches it for a while (``lifecycle run`` removes it then). Audited."""
    import datetime as _dt

    new = parse_address(new_address)
    days = obj.settings.accounts.rename_alias_days if keep_old_days is None else keep_old_days
    with obj.store() as store:
        a = find_account(store, address)
        if not store.accounts.is_local_domain(new.rpartition("@")[2]):
            raise Refused(f"{new.rpartition('@')[2]} is not a local domain (add it to domains: in the config)")
        until = None if days is None else _now() + _dt.timedelta(days=days)
        try:
            renamed = store.org.rename_account(a.id, new, alias_until=until, keep_alias=days != 0)
        except Exists:
            raise Refused(f"{new} is taken") from None
    old = "not kept" if days == 0 else (f"kept until {until.astimezone().isoformat(timespec='minutes')}" if until else "kept")
    click.echo(f"{a.address} -> {renamed.address} (old address {old})")


@account.command("list")
@list_options(tuple(s.value for s in AccountState), "Only accounts in this state (repeatable).")
@pass_ctx
def account_list(obj: Context, unit: str | None, states: tuple[str, ...], as_json: bool, as_csv: bool) -> None:
    """List accounts: address, name, kind, state, usage, quota, last login."""
    with obj.store() as store:
        accounts = store.accounts.list_accounts()
        if unit is not None:
            members = unit_account_ids(store.org, unit)
            accounts = [a for a in accounts if a.id in members]
    accounts = sorted((a for a in accounts if not states or a.state.value in states), key=lambda a: a.address)
    default = obj.settings.quota.mailbox
    rows = [{"address": a.address, "name": a.display_name, "kind": a.kind.value, "state": a.state.value,
             "used_bytes": a.used_bytes, "quota_bytes": a.quota_bytes if a.quota_bytes is not None else default,
             "messages": a.used_messages, "last_login": iso(a.last_login_at)} for a in accounts]
    if emit_rows(rows, as_json, as_csv):
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("address", "name", "kind", "state", "used", "quota", "last login"):
        table.add_column(column, no_wrap=column in ("address", "state"))
    for a in accounts:
        table.add_row(a.address, a.display_name, a.kind.value, a.state.value, format_limit(a.used_bytes),
                      format_limit(a.quota_bytes if a.quota_bytes is not None else default),
                      show_time(a.last_login_at))
    console().print(table)
    click.echo(f"{len(accounts)} account(s)")


@account.command("show")
@click.argument("address")
@pass_ctx
def account_show(obj: Context, address: str) -> None:
    """Show one account and its folders."""
    with obj.store() as store:
        a = find_account(store, address)
        folders = [store.folders.folder_status(f.id) for f in store.folders.list_folders(a.id)]
        record = store.lifecycle.record(a.id)
        profile = store.org.get_profile(a.id)
        unit = store.org.unit_by_id(profile.unit_id) if profile and profile.unit_id else None
    quota = a.quota_bytes if a.quota_bytes is not None else obj.settings.quota.mailbox
    rows = [("address", a.address), ("name", a.display_name)]
    if profile is not None:
        rows += [("unit", f"{unit.name} ({unit.code})" if unit else "-"), ("title", profile.title or "-"),
                 ("phone", ", ".join(p for p in (profile.phone, profile.mobile) if p) or "-")]
    why = record.state_reason if record is not None and a.state.value != "active" else None
    rows += [("kind", a.kind.value), ("state", a.state.value + (f" ({why})" if why else ""))]
    hours = obj.settings.passwords.initial_change_hours
    if a.state is AccountState.MUST_CHANGE_PASSWORD and hours and a.password_changed_at:  # R-PASS-1 (molisa)
        rows.append(("change password by", show_time(a.password_changed_at + _dt.timedelta(hours=hours))))
    rows += [
        ("created", show_time(a.created_at)), ("password changed", show_time(a.password_changed_at)),
        ("last login", show_time(a.last_login_at)),
        ("used", f"{format_limit(a.used_bytes)} in {a.used_messages} message(s) of {format_limit(quota)}"),
    ]
    for key, value in rows:
        click.echo(f"{key + ':':<20}{value}")
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("folder", "messages", "unseen", "size"):
        table.add_column(column, no_wrap=True, justify="left" if column == "folder" else "right")
    for st in folders:
        table.add_row(st.folder.name, str(st.messages), str(st.unseen), format_limit(st.size))
    console().print(table)


@account.command("passwd")
@click.argument("address")
@click.option("--password", help="New password (default: a random one, printed).")
@click.option("--active", is_flag=True, help="Do not ask the user to change it at next login.")
@pass_ctx
def account_passwd(obj: Context, address: str, password: str | None, active: bool) -> None:
    """Reset a password (R-PASS-4); the user must change it at next login unless --active."""
    from mailserver.accounts.auth import hash_password

    with obj.store() as store:
        a = find_account(store, address)
        plain = new_password(obj.settings, a.address, password)
        if password is not None:
            from mailserver.accounts.history import refuse_reused

            if (problem := refuse_reused(store, obj.settings.passwords, a.id, plain)) is not None:
                raise Refused(f"password refused (profile {obj.settings.profile}): {problem.en}")
        # A locked or revoked account stays so: a reset is not an unlock.
        state = None
        if a.state in LOGIN_STATES:
            state = AccountState.ACTIVE if active else AccountState.MUST_CHANGE_PASSWORD  # R-PASS-1
        store.accounts.set_password(a.id, hash_password(obj.settings.passwords, plain), state=state)
        after = store.accounts.get_account_by_id(a.id)
    click.echo(f"address: {a.address}")
    if password is None:
        click.echo(f"password: {plain}")
    click.echo(f"state: {after.state.value if after else (state or a.state).value}")


@account.command("lock")
@click.argument("address")
@click.option("--reason", default="", help="Why (a security problem, R-ACC-2); in the notice and the audit log.")
@click.option("--no-notify", is_flag=True, help="Do not mail the owner, the unit mailbox and the unit's head.")
@pass_ctx
def account_lock(obj: Context, address: str, reason: str, no_notify: bool) -> None:
    """Lock an account: no logins; mail is still received (R-ACC-2). The owner and the unit are told."""
    from mailserver.accounts.notify import tell_state_change

    reason = " ".join(reason.split())
    with obj.store() as store:
        a = find_account(store, address)
        if a.state not in LOGIN_STATES:
            raise Refused(f"{a.address} is {a.state.value}; only an active account can be locked")
        now = _now()
        # Through the lifecycle record, so the lock's reason and time are known and audited.
        if not store.lifecycle.change_state(a.id, a.state, AccountState.LOCKED, "operator", action="lock",
                                             now=now, detail=reason or "locked by the operator"):
            raise Refused(f"{a.address} changed state meanwhile; try again")
        told = [] if no_notify else tell_state_change(store, obj.settings, a, "locked", reason, now)
    click.echo(f"{a.address}: locked")
    if told:
        click.echo(f"notified: {', '.join(told)}")


@account.command("unlock")
@click.argument("address")
@click.option("--active", is_flag=True, help="Do not ask the user to set a new password at next login.")
@pass_ctx
def account_unlock(obj: Context, address: str, active: bool) -> None:
    """Unlock a locked account. The user must set a new password at next login unless --active:
    a lock follows a security problem (R-ACC-2) or an unchanged initial password (R-PASS-3)."""
    import datetime as _dt

    from mailserver.accounts.lifecycle import unlock_refusal

    with obj.store() as store:
        a = find_account(store, address)
        if a.state is not AccountState.LOCKED:
            raise Refused(f"{a.address} is {a.state.value}, not locked")
        now = _dt.datetime.now(_dt.UTC)
        if (why := unlock_refusal(store, obj.settings, a.id, now)) is not None:
            raise Refused(f"{a.address} is {why}")
        state = AccountState.ACTIVE if active else AccountState.MUST_CHANGE_PASSWORD
        record = store.lifecycle.record(a.id)
        was = record.state_reason if record is not None else None
        # Recorded as a re-activation: the inactivity clock restarts (R-LIFE-4/5), audited.
        if not store.lifecycle.change_state(a.id, AccountState.LOCKED, state, "unlocked", now=now,
                                             action="unlock", reactivate=True):
            raise Refused(f"{a.address} changed state meanwhile; try again")
        # a lock by the login guard (guard.lock_after): its count of failures starts again
        from mailserver.policy.guard import account_key

        store.guard.clear([f"user:{account_key(a.address)}"])
    click.echo(f"{a.address}: {state.value}" + (f" (was locked: {was})" if was else ""))


@account.command("delete")
@click.argument("address")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")
@pass_ctx
def account_delete(obj: Context, address: str, yes: bool) -> None:
    """Delete an account with all its folders and messages; this cannot be undone. To stop
    an account but keep its mail, use `account revoke` instead (R-LIFE-1).

    \b
    Example:
      mailserver account delete annv@most.gov.vn --yes
    """
    with obj.store() as store:
        a = find_account(store, address)
        confirm(yes, f"Delete {a.address} and all of its mail?")
        store.accounts.delete_account(a.id)
    click.echo(f"{a.address}: deleted")


# -- import (R-LIFE-1) ---------------------------------------------------------------------------

@account.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the sheet and show the addresses; create nothing.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the result sheets (default: FILE's name + '-accounts' next to it).")
@click.option("--unit", "default_unit", help="Unit (code) for rows that leave Phòng ban/Đơn vị empty.")
@pass_ctx
def account_import(obj: Context, file: Path, dry_run: bool, out_dir: Path | None, default_unit: str | None) -> None:
    """Create the accounts of a registration form (CSV), all or nothing (R-LIFE-1).

    \b
    Columns read (header names in any case, with or without tones):
      Họ và tên (required)   the person's full name; the address follows the profile's rule
      Phòng ban/Đơn vị       the unit, by name or code (or --unit for empty cells)
      Chức vụ                title
      Điện thoại, Di động    phone and mobile
    Other columns are listed and ignored. The same person (name, unit and phone) twice, in the
    file or already registered, refuses the whole file (R-BOX-1).

    \b
    Example:
      mailserver account import dang-ky.csv --dry-run
      mailserver account import dang-ky.csv --unit vp
    """
    from mailserver.accounts import provisioning as prov

    settings = obj.settings
    try:
        sheet = prov.read_sheet(file.read_bytes())
        with organisation(obj) as org:
            planned = prov.plan(sheet, org, settings, default_unit=default_unit)
            if sheet.ignored_columns:
                click.echo(f"ignored columns: {'; '.join(sheet.ignored_columns)}")
            if dry_run:
                for p in planned:
                    click.echo(f"line {p.row.line}: {p.row.name} | {p.unit.code} | {p.row.title} → {p.address}")
                click.echo(f"dry run: {len(planned)} account(s) would be created; nothing was changed")
                return
            out = out_dir or file.with_name(file.stem + "-accounts")
            with progress_bars() as phases:
                sheets = prov.execute(planned, org, settings, out, delimiter=sheet.delimiter,
                                      progress=phases("passwords", len(planned), unit="accounts"))
    except prov.ImportRefused as exc:
        for line, message in exc.errors:
            click.echo(f"{file.name}:{line}: {message}" if line else f"{file.name}: {message}", err=True)
        raise Refused(f"nothing created: {len(exc.errors)} problem(s)") from None
    for p in planned:
        click.echo(f"line {p.row.line}: {p.row.name} → {p.address}")
    click.echo(f"created {len(planned)} account(s); initial passwords in:")
    for path in sheets:
        click.echo(f"  {path}")


# -- lifecycle (R-LIFE-1..5) ----------------------------------------------------------------------

@account.command("revoke")
@click.argument("address")
@click.option("--reason", default="", help="Why (the unit's notice, leaving, a violation); kept in the audit log.")
@click.option("--no-notify", is_flag=True, help="Do not mail the owner, the unit mailbox and the unit's head.")
@pass_ctx
def account_revoke(obj: Context, address: str, reason: str, no_notify: bool) -> None:
    """Revoke an account (R-LIFE-1): no logins, mail to it refused, its mail kept. The owner and
    the unit are told."""
    from mailserver.accounts.notify import tell_state_change

    require_schema(obj)

    reason = " ".join(reason.split())
    with obj.store() as store:
        a = find_account(store, address)
        if a.state not in _REVOCABLE:
            raise Refused(f"{a.address} is already {a.state.value}")
        now = _now()
        told = [] if no_notify else tell_state_change(store, obj.settings, a, "revoked", reason, now, unit=False)
        if not store.lifecycle.change_state(a.id, a.state, AccountState.REVOKED, f"operator: {reason}".rstrip(": "),
                                             now=now, action="revoke", detail=reason or "revoked by the operator"):
            raise Refused(f"{a.address} changed state meanwhile; try again")
        headed = _units_headed(store, a.id)
        told += [] if no_notify else tell_state_change(store, obj.settings, a, "revoked", reason, now, owner=False)
    click.echo(f"{a.address}: revoked")
    if told:
        click.echo(f"notified: {', '.join(told)}")
    for code in headed:
        click.echo(f"note: {a.address} heads unit {code}; hand it over with `mailserver unit handover {code} --to ADDRESS`")


def _units_headed(store, account_id: int) -> list[str]:
    from storage.api import Organisation

    return [u.code for u in store.org.list_units() if u.head is not None and u.head.id == account_id]


@account.command("reissue")
@click.argument("address")
@click.option("--password", help="New initial password (default: a random one, printed).")
@click.option("--active", is_flag=True, help="Do not ask the user to change it at first login.")
@pass_ctx
def account_reissue(obj: Context, address: str, password: str | None, active: bool) -> None:
    """Give a revoked account back, with its mail (lamdong art. 7.2d): a new password, the
    leaving notice forgotten, the inactivity clock restarted."""
    require_schema(obj)
    from mailserver.accounts.auth import hash_password

    with obj.store() as store:
        a = find_account(store, address)
        if a.state is not AccountState.REVOKED:
            raise Refused(f"{a.address} is {a.state.value}, not revoked")
        plain = pw_hash = None
        state = AccountState.ACTIVE
        if a.kind is not AccountKind.GROUP:  # a group never logs in
            plain = new_password(obj.settings, a.address, password)
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


@account.command("leave")
@click.argument("address")
@click.option("--notice", "notice", metavar="DATE", help="When the unit's written notice was received "
              "(default: now, unless only --left is given).")
@click.option("--left", "left", metavar="DATE", help="Date of the leaving decision, when known (R-LIFE-4).")
@click.option("--keep", is_flag=True, help="A former head keeps the mailbox on request (most art. 18.3).")
@click.option("--cancel", is_flag=True, help="Forget the notice and the leaving date.")
@pass_ctx
def account_leave(obj: Context, address: str, notice: str | None, left: str | None, keep: bool, cancel: bool) -> None:
    """Record that the owner leaves (R-LIFE-2/4): `lifecycle run` revokes the account when the
    profile's deadline after the notice (or the leaving date) has passed."""
    require_schema(obj)
    from mailserver.accounts.lifecycle import rules_from
    from mailserver.policy.lifecycle import add_months

    if cancel and (notice or left or keep):
        raise click.UsageError("--cancel takes no other option")
    notice_at = parse_when(notice, "--notice") if notice else None
    left_at = parse_when(left, "--left") if left else None
    if not cancel and notice_at is None and left_at is None:
        notice_at = _now()
    with obj.store() as store:
        a = find_account(store, address)
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


@account.command("exempt")
@click.argument("address")
@click.option("--off", is_flag=True, help="Apply the inactivity rules to it again.")
@pass_ctx
def account_exempt(obj: Context, address: str, off: bool) -> None:
    """Keep an account out of the inactivity rules (a service account, a mailbox kept on request)."""
    require_schema(obj)

    with obj.store() as store:
        a = find_account(store, address)
        store.lifecycle.set_exempt(a.id, not off)
    click.echo(f"{a.address}: {'subject to' if off else 'exempt from'} the inactivity rules")
