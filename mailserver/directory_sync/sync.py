"""`mailserver ldap sync [--dry-run]` (and daily at ``ldap.sync_at``): the directory's units and
people become units and LDAP-backed accounts (R-PROTO-3).

Three steps: ``read_directory`` (the only one that speaks LDAP), ``plan`` (pure: what would
change, given what the directory lists and what the store holds) and ``apply``. A person is
matched to an account by the DN recorded in the account (``{LDAP}<dn>``), else by address. Names
are NFC (R-TEXT-1). The address is the person's ``mail`` when it is in a local domain, else the
profile's address rule (R-ADDR-*) in the first domain. A person who is disabled in the directory
(``ldap.disabled_filter``) or no longer listed is locked (R-ACC-2); from there the lifecycle rules
(R-LIFE-*) take over, counting from the last login as for any account. An account the sync locked
is unlocked when its person is listed and enabled again. Accounts the sync did not create are
never touched unless ``ldap.adopt_existing``.
"""

from __future__ import annotations

import datetime as _dt
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable

from config.settings import Settings
from mailserver.directory_sync.connection import LDAP_MARK, is_ldap_backed, service_connection
from mailserver.policy.addresses import AddressPolicyError, ascii_fold_name, derive_local_part, unit_local_part
from storage.api import LOGIN_STATES, Account, AccountKind, AccountState, NewPerson, Store

ACTOR = "ldap sync"
REASON_DISABLED = "ldap: disabled in the directory"
REASON_GONE = "ldap: no longer in the directory"


@dataclass(frozen=True, slots=True)
class DirUnit:
    dn: str
    code: str
    name: str
    parent: str | None = None  # code of the nearest unit entry above it


@dataclass(frozen=True, slots=True)
class Person:
    dn: str
    name: str
    mail: str | None
    unit: str | None  # a unit code (attribute or the nearest unit above the entry)
    title: str = ""
    phone: str = ""
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    """One line of the report: ``action`` is create-unit, create, adopt, move, lock, unlock or skip."""

    action: str
    address: str
    detail: str
    dn: str = ""
    name: str = ""
    unit: str | None = None
    parent: str | None = None
    account_id: int | None = None
    title: str = ""
    phone: str = ""

    def line(self) -> str:
        return f"{self.action:<11} {self.address:<32} {self.detail}"


@dataclass
class Existing:
    """What the store holds, as ``plan`` needs it."""

    accounts: list[Account]
    units: dict[str, str]  # unit code (lower) → its mailbox address
    profiles: dict[int, str | None] = field(default_factory=dict)  # account id → unit code (lower)
    sync_locked: set[int] = field(default_factory=set)  # accounts this sync locked
    taken: dict[str, set[str]] = field(default_factory=dict)  # domain → local parts in use


def _nfc(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _first(attrs: dict, names: Iterable[str]) -> str:
    for name in names:
        value = attrs.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value not in (None, ""):
            return _nfc(str(value))
    return ""


def _parent_unit(dn: str, unit_dns: dict[str, str]) -> str | None:
    """The code of the nearest unit entry above ``dn`` (RDNs joined as the directory wrote them)."""
    from ldap3.utils.dn import parse_dn

    parts = [f"{a}={v}" for a, v, _ in parse_dn(dn, escape=True)]
    for i in range(1, len(parts)):
        code = unit_dns.get(",".join(parts[i:]).lower())
        if code is not None:
            return code
    return None


def read_directory(settings: Settings) -> tuple[list[DirUnit], list[Person]]:
    """Units then people, as the directory lists them under ``ldap.base_dn``. Paged, so Active
    Directory's 1,000-entry limit does not cut the list. ``DirectoryError`` when unreachable."""
    ldap = settings.ldap
    a = ldap.attributes
    conn = service_connection(ldap)
    try:
        def search(flt: str, attrs: list[str]) -> list[tuple[str, dict]]:
            found = conn.extend.standard.paged_search(ldap.base_dn, flt, attributes=attrs, paged_size=500, generator=False)
            return [(e["dn"], dict(e["attributes"])) for e in found if e.get("type") == "searchResEntry"]

        raw_units = search(ldap.units_filter, [a.unit_code, *a.unit_name])
        units = [DirUnit(dn, _first(attrs, [a.unit_code]), _first(attrs, a.unit_name) or _first(attrs, [a.unit_code]))
                 for dn, attrs in raw_units if _first(attrs, [a.unit_code])]
        unit_dns = {_normal_dn(u.dn): u.code for u in units}
        # parents before children, as the store wants them
        units = sorted((DirUnit(u.dn, u.code, u.name, _parent_unit(u.dn, unit_dns)) for u in units),
                       key=lambda u: (_normal_dn(u.dn).count(","), u.code))
        codes = {u.code.lower(): u.code for u in units}
        disabled: set[str] = set()
        if ldap.disabled_filter:
            disabled = {_normal_dn(dn) for dn, _ in search(f"(&{ldap.people_filter}{ldap.disabled_filter})", [])}
        people = []
        for dn, attrs in search(ldap.people_filter, [*a.name, a.mail, a.unit, a.title, a.phone]):
            named = _first(attrs, [a.unit])
            unit = codes.get(named.lower()) if named else None
            people.append(Person(
                dn=dn, name=_first(attrs, a.name), mail=(_first(attrs, [a.mail]).lower() or None),
                unit=unit or _parent_unit(dn, unit_dns), title=_first(attrs, [a.title]),
                phone=_first(attrs, [a.phone]), disabled=_normal_dn(dn) in disabled,
            ))
        return units, people
    finally:
        conn.unbind()


def _normal_dn(dn: str) -> str:
    from ldap3.utils.dn import parse_dn

    return ",".join(f"{a}={v}" for a, v, _ in parse_dn(dn, escape=True)).lower()


def read_existing(store: Store) -> Existing:
    org = store.org
    accounts = store.accounts.list_accounts()
    units = {u.code.lower(): u.account.address for u in org.list_units()}
    by_id = {u.id: u.code.lower() for u in org.list_units()}
    profiles: dict[int, str | None] = {}
    sync_locked: set[int] = set()
    for acc in accounts:
        if not is_ldap_backed(acc.password_hash):
            continue
        profile = org.get_profile(acc.id)
        profiles[acc.id] = by_id.get(profile.unit_id) if profile and profile.unit_id else None
        if acc.state == AccountState.LOCKED:
            record = store.lifecycle.record(acc.id)
            if record is not None and (record.state_reason or "").startswith("ldap:"):
                sync_locked.add(acc.id)
    taken: dict[str, set[str]] = {}
    for acc in accounts:
        local, _, domain = acc.address.partition("@")
        taken.setdefault(domain, set()).add(local)
    return Existing(accounts, units, profiles, sync_locked, taken)


def plan(settings: Settings, units: list[DirUnit], people: list[Person], existing: Existing) -> list[Change]:
    """What a sync changes, in order: units, then people, then accounts no longer listed. Pure."""
    domain = settings.domains[0]
    local_domains = {d.lower() for d in settings.domains}
    taken = {d: set(v) for d, v in existing.taken.items()}
    changes: list[Change] = []
    known_units = dict(existing.units)
    for u in units:
        if u.code.lower() in known_units:
            continue
        address = _unit_address(settings, u, taken.setdefault(domain, set()), domain)
        changes.append(Change("create-unit", address, f"unit {u.code} {u.name}", dn=u.dn, name=u.name, unit=u.code,
                              parent=u.parent))
        known_units[u.code.lower()] = address
    by_dn = {acc.password_hash[len(LDAP_MARK):].lower(): acc for acc in existing.accounts
             if is_ldap_backed(acc.password_hash)}
    by_address = {acc.address: acc for acc in existing.accounts}
    seen: set[int] = set()
    for p in people:
        if not p.name:
            changes.append(Change("skip", p.mail or "-", f"{p.dn}: no name in the directory", dn=p.dn))
            continue
        acc = by_dn.get(p.dn.lower())
        if acc is None and p.mail and p.mail in by_address:
            acc = by_address[p.mail]
            if not is_ldap_backed(acc.password_hash):
                if not settings.ldap.adopt_existing or acc.kind != AccountKind.PERSONAL:
                    changes.append(Change("skip", acc.address, "a local account (ldap.adopt_existing is off)", dn=p.dn))
                    seen.add(acc.id)
                    continue
                changes.append(Change("adopt", acc.address, f"password from the directory ({p.dn})", dn=p.dn,
                                      account_id=acc.id))
            else:  # the entry moved in the tree: bind as its new DN
                changes.append(Change("adopt", acc.address, f"entry moved to {p.dn}", dn=p.dn, account_id=acc.id))
        if acc is not None:
            seen.add(acc.id)
            changes += _update(p, acc, existing)
            continue
        if p.disabled:
            continue  # never created for a person who may not log in
        address = _person_address(settings, p, taken, domain, local_domains)
        if address is None:
            changes.append(Change("skip", p.mail or "-", f"{p.dn}: no address by the profile's rule for {p.name!r}", dn=p.dn))
            continue
        unit = f" unit {p.unit}" if p.unit else ""
        changes.append(Change("create", address, f"{p.name}{unit}", dn=p.dn, name=p.name, unit=p.unit,
                              title=p.title, phone=p.phone))
    for acc in existing.accounts:
        if is_ldap_backed(acc.password_hash) and acc.id not in seen and acc.state in LOGIN_STATES:
            changes.append(Change("lock", acc.address, REASON_GONE, account_id=acc.id))
    return changes


def _update(p: Person, acc: Account, existing: Existing) -> list[Change]:
    out = []
    if p.disabled and acc.state in LOGIN_STATES:
        out.append(Change("lock", acc.address, REASON_DISABLED, dn=p.dn, account_id=acc.id))
    elif not p.disabled and acc.id in existing.sync_locked:
        out.append(Change("unlock", acc.address, "listed and enabled in the directory again", dn=p.dn, account_id=acc.id))
    if p.unit is not None and existing.profiles.get(acc.id) != p.unit.lower() and acc.state != AccountState.DELETED:
        out.append(Change("move", acc.address, f"unit {existing.profiles.get(acc.id) or '-'} -> {p.unit}", dn=p.dn,
                          account_id=acc.id, unit=p.unit, title=p.title, phone=p.phone))
    return out


def _person_address(settings: Settings, p: Person, taken: dict[str, set[str]], domain: str,
                    local_domains: set[str]) -> str | None:
    if p.mail and p.mail.rpartition("@")[2] in local_domains:
        local, _, d = p.mail.rpartition("@")
        if local not in taken.setdefault(d, set()):
            taken[d].add(local)
            return p.mail
    try:
        local = derive_local_part(p.name, taken.setdefault(domain, set()), settings.address_rule)  # R-ADDR-*
    except AddressPolicyError:
        return None
    taken[domain].add(local)
    return f"{local}@{domain}"


def _unit_address(settings: Settings, u: DirUnit, taken: set[str], domain: str) -> str:
    try:
        local = unit_local_part(u.name, settings.address_rule, taken)
    except AddressPolicyError:  # too long or taken: the unit's code, folded, numbered if need be
        base = "".join(c for c in ascii_fold_name(u.code).lower() if c.isalnum()) or "donvi"
        local, n = base, 2
        while local in taken:
            local, n = f"{base}{n}", n + 1
    taken.add(local)
    return f"{local}@{domain}"


def apply(settings: Settings, store: Store, changes: list[Change], *, now: _dt.datetime | None = None) -> None:
    """Carry the plan out: units first (people refer to them), the new people in one transaction."""
    from mailserver.accounts.auth import hash_password
    from mailserver.policy.passwords import generate_password

    now = now or _dt.datetime.now(_dt.UTC)
    org = store.org
    for c in changes:
        if c.action == "create-unit":
            # the unit mailbox is opened by its head and delegates (R-BOX-2): a random password nobody holds
            org.add_unit(c.name, c.unit or "", c.address, hash_password(settings.passwords, generate_password(24)),
                        parent=c.parent)
    unit_ids = {u.code.lower(): u.id for u in org.list_units()}
    people = [NewPerson(address=c.address, display_name=c.name, password_hash=LDAP_MARK + c.dn,
                        unit_id=unit_ids.get((c.unit or "").lower()), title=c.title, phone=c.phone,
                        state=AccountState.ACTIVE)  # the directory, not this server, issued the password
              for c in changes if c.action == "create"]
    if people:
        org.create_people(people)
    accounts = {a.id: a for a in store.accounts.list_accounts()}
    for c in changes:
        acc = accounts.get(c.account_id) if c.account_id is not None else None
        if acc is None:
            continue
        if c.action == "adopt":
            store.lifecycle.change_state(acc.id, acc.state, acc.state, "ldap: adopted", now=now, actor=ACTOR,
                                         action="ldap-adopt", password_hash=LDAP_MARK + c.dn)
        elif c.action == "lock":
            store.lifecycle.change_state(acc.id, acc.state, AccountState.LOCKED, c.detail, now=now, actor=ACTOR)
        elif c.action == "unlock":
            store.lifecycle.change_state(acc.id, AccountState.LOCKED, AccountState.ACTIVE, "ldap: enabled again",
                                         now=now, actor=ACTOR, reactivate=True)
        elif c.action == "move":
            profile = org.get_profile(acc.id)
            org.set_profile(acc.id, unit_id=unit_ids.get((c.unit or "").lower()), title=c.title or (profile.title if profile else ""),
                            phone=c.phone or (profile.phone if profile else ""), mobile=profile.mobile if profile else "")


def sync(settings: Settings, store: Store, *, dry_run: bool = False) -> list[Change]:
    """Read the directory, plan, and (unless ``dry_run``) apply. Returns the plan."""
    units, people = read_directory(settings)
    changes = plan(settings, units, people, read_existing(store))
    if not dry_run:
        apply(settings, store, changes)
    return changes


def start_sync(loop, settings: Settings, store: Store):
    """The daily sync at ``ldap.sync_at`` (app.py keeps the handle and cancels it at shutdown)."""
    import logging

    from mailserver.maintenance.daily import DailyJob

    log = logging.getLogger(__name__)

    def work() -> None:
        changes = sync(settings, store)
        for change in changes:
            log.info("ldap sync: %s", change.line())

    return DailyJob(loop, "ldap-sync", settings.ldap.sync_at if settings.ldap.enabled else None, work).start()
