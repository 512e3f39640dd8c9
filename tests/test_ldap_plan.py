"""What `ldap sync` decides (mailserver/directory_sync/sync.py ``plan``, pure): table tests without
a directory. R-PROTO-3 (people and units from the directory), R-ACC-2 (locked, not deleted),
R-ADDR-* (an address by the profile's rule when ``mail`` is missing or not local)."""

from __future__ import annotations

import datetime as _dt

from config.settings import Settings
from mailserver.directory_sync.connection import LDAP_MARK
from mailserver.directory_sync.sync import DirUnit, Existing, Person, plan
from storage.api import Account, AccountKind, AccountState

SETTINGS = Settings(domains=("molisa.gov.vn",), address_rule="molisa")
DN = "uid={},ou=vp,dc=molisa,dc=gov,dc=vn"


def account(n: int, address: str, *, ldap_dn: str | None = None, state=AccountState.ACTIVE,
            kind=AccountKind.PERSONAL) -> Account:
    return Account(id=n, address=address, display_name="x", kind=kind, state=state,
                   password_hash=LDAP_MARK + ldap_dn if ldap_dn else "$argon2id$local",
                   created_at=_dt.datetime(2026, 1, 1, tzinfo=_dt.UTC), password_changed_at=None, last_login_at=None,
                   quota_bytes=None, used_bytes=0, used_messages=0)


def actions(changes) -> list[tuple[str, str]]:
    return [(c.action, c.address) for c in changes]


def test_new_people_and_units_are_created_with_addresses_from_mail_or_the_rule():
    units = [DirUnit("ou=vp,dc=molisa,dc=gov,dc=vn", "vp", "Văn phòng Bộ")]
    people = [Person(DN.format("an"), "Nguyễn Văn An", "an.nv@molisa.gov.vn", "vp"),
              Person(DN.format("binh"), "Trần Thị Bình", None, "vp"),
              Person(DN.format("cuong"), "Lê Văn Cường", "cuong@gmail.com", None),  # not a local domain
              Person(DN.format("dung"), "Phạm Thị Dung", "dung@molisa.gov.vn", None, disabled=True)]
    changes = plan(SETTINGS, units, people, Existing([], {}))
    assert actions(changes) == [("create-unit", "vpb@molisa.gov.vn"), ("create", "an.nv@molisa.gov.vn"),
                                ("create", "binhtt@molisa.gov.vn"), ("create", "cuonglv@molisa.gov.vn")]
    assert changes[2].dn == DN.format("binh") and changes[2].unit == "vp"


def test_disabled_or_gone_people_are_locked_and_enabled_again_unlocked():
    existing = Existing([account(1, "an@molisa.gov.vn", ldap_dn=DN.format("an")),
                         account(2, "binh@molisa.gov.vn", ldap_dn=DN.format("binh")),
                         account(3, "cuong@molisa.gov.vn", ldap_dn=DN.format("cuong"), state=AccountState.LOCKED),
                         account(4, "local@molisa.gov.vn")],  # not ours: never touched
                        {}, sync_locked={3})
    people = [Person(DN.format("an"), "Nguyễn Văn An", "an@molisa.gov.vn", None, disabled=True),
              Person(DN.format("cuong"), "Lê Văn Cường", "cuong@molisa.gov.vn", None)]
    changes = plan(SETTINGS, [], people, existing)
    assert actions(changes) == [("lock", "an@molisa.gov.vn"), ("unlock", "cuong@molisa.gov.vn"),
                                ("lock", "binh@molisa.gov.vn")]
    assert "no longer" in changes[-1].detail


def test_an_account_locked_by_the_operator_is_not_unlocked_by_the_sync():
    existing = Existing([account(1, "an@molisa.gov.vn", ldap_dn=DN.format("an"), state=AccountState.LOCKED)], {})
    assert plan(SETTINGS, [], [Person(DN.format("an"), "Nguyễn Văn An", "an@molisa.gov.vn", None)], existing) == []


def test_local_accounts_are_adopted_only_when_configured():
    existing = Existing([account(1, "an@molisa.gov.vn")], {})
    people = [Person(DN.format("an"), "Nguyễn Văn An", "an@molisa.gov.vn", None)]
    assert actions(plan(SETTINGS, [], people, existing)) == [("skip", "an@molisa.gov.vn")]
    adopting = SETTINGS.model_copy(update={"ldap": SETTINGS.ldap.model_copy(update={"adopt_existing": True})})
    (change,) = plan(adopting, [], people, existing)
    assert change.action == "adopt" and change.dn == DN.format("an") and change.account_id == 1


def test_an_entry_moved_in_the_tree_keeps_its_account():
    existing = Existing([account(1, "an@molisa.gov.vn", ldap_dn=DN.format("an"))], {}, profiles={1: None})
    moved = "uid=an,ou=tccb,dc=molisa,dc=gov,dc=vn"
    changes = plan(SETTINGS, [], [Person(moved, "Nguyễn Văn An", "an@molisa.gov.vn", "tccb")], existing)
    assert actions(changes) == [("adopt", "an@molisa.gov.vn"), ("move", "an@molisa.gov.vn")]
    assert changes[0].dn == moved and changes[1].unit == "tccb"
