"""``ldap:``: accounts backed by an agency's LDAP directory (R-PROTO-3; OpenLDAP, Active Directory).

Two uses of one directory: the password of an LDAP-backed account is checked by a bind
(mailserver/directory_sync/bind.py), and `mailserver ldap sync` turns the directory's people and
units into accounts and units (mailserver/directory_sync/sync.py). Off while ``url`` is null.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

_URL_RE = re.compile(r"^ldaps?://[^/\s]+/?$", re.IGNORECASE)
_RUN_AT_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _url(value: object) -> object:
    if value is None or (isinstance(value, str) and _URL_RE.match(value.strip())):
        return value.strip() if isinstance(value, str) else value
    raise PydanticCustomError("ldap_url", "expected ldap://host[:port] or ldaps://host[:port], got {got}", {"got": repr(value)})


def _run_at(value: object) -> object:
    if value is None or (isinstance(value, str) and _RUN_AT_RE.match(value.strip())):
        return value.strip() if isinstance(value, str) else value
    raise PydanticCustomError("run_at", "expected a local time HH:MM such as 03:00, or null, got {got}", {"got": repr(value)})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LdapAttributes(_Frozen):
    """Which directory attribute holds what (the attribute map). A person's unit is the value of
    ``unit`` matched against the units' codes, else the nearest unit entry above the person."""

    name: tuple[str, ...] = ("displayName", "cn")  # first one present wins
    mail: str = "mail"
    unit: str = "departmentNumber"
    title: str = "title"
    phone: str = "telephoneNumber"
    unit_code: str = "ou"
    unit_name: tuple[str, ...] = ("description", "ou")


class Ldap(_Frozen):
    url: Annotated[str | None, BeforeValidator(_url)] = None  # null: no directory
    start_tls: bool = False  # ldap:// then StartTLS (refused if the server cannot)
    ca_file: Path | None = None  # PEM of the CA that signed the directory's certificate; null: the system's
    verify_certificates: bool = True
    timeout: float = Field(default=10.0, gt=0)  # seconds for connecting and for each operation
    # The service account that searches (search + bind, and sync); null: anonymous.
    bind_dn: str | None = None
    bind_password: str | None = None
    # Password check: the user's DN from this template ({local}, {domain}, {address}) with no
    # search, e.g. "uid={local},ou=people,dc=molisa,dc=gov,dc=vn"; null: search + bind.
    user_dn_template: str | None = None
    base_dn: str = ""
    # Finds the one entry of a login address (search + bind); {address} is escaped (RFC 4515).
    user_filter: str = "(&(objectClass=inetOrgPerson)(mail={address}))"
    people_filter: str = "(objectClass=inetOrgPerson)"
    units_filter: str = "(objectClass=organizationalUnit)"
    # People matching this as well are disabled: locked here. OpenLDAP ppolicy: (pwdAccountLockedTime=*);
    # Active Directory: (userAccountControl:1.2.840.113556.1.4.803:=2). null: nobody is disabled.
    disabled_filter: str | None = "(pwdAccountLockedTime=*)"
    attributes: LdapAttributes = LdapAttributes()
    # An account that already exists with a person's address becomes LDAP-backed (its local
    # password is no longer used); false: it is left alone and reported.
    adopt_existing: bool = False
    sync_at: Annotated[str | None, BeforeValidator(_run_at)] = None  # daily `ldap sync` in the server; null: never

    @property
    def enabled(self) -> bool:
        return self.url is not None

    @model_validator(mode="after")
    def _tls_once(self) -> Ldap:
        if self.start_tls and self.url is not None and self.url.lower().startswith("ldaps:"):
            raise ValueError("ldap.start_tls: not with an ldaps:// url (TLS is already on)")
        return self
