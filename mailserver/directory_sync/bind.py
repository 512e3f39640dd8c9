"""Password check of an LDAP-backed account by a bind as the user (R-PROTO-3).

The DN comes from ``ldap.user_dn_template`` (no search), else it is the one `ldap sync`
recorded in the account (people without ``mail`` have no other key), else a search by the
service account with ``ldap.user_filter`` finds it (exactly one entry, or no login). An empty password is refused
before any bind: LDAP servers accept it as an anonymous "unauthenticated bind" (RFC 4513 5.1.2).
Blocking: called inside ``Authenticator.authenticate``, in a worker thread, so the login guard,
the delays and the login log line are the same as for local passwords.
"""

from __future__ import annotations

import logging

from ldap3.core.exceptions import LDAPException, LDAPInvalidCredentialsResult
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from config.ldap import Ldap
from mailserver.directory_sync.connection import DirectoryError, connect, service_connection

log = logging.getLogger(__name__)


def user_dn(settings: Ldap, address: str, recorded: str = "") -> str | None:
    """The DN to bind as for ``address``; None when the directory has no single entry for it."""
    local, _, domain = address.partition("@")
    if settings.user_dn_template:
        return settings.user_dn_template.format(local=escape_rdn(local), domain=escape_rdn(domain),
                                                address=escape_rdn(address))
    if recorded:
        return recorded
    conn = service_connection(settings)
    try:
        conn.search(settings.base_dn, settings.user_filter.format(address=escape_filter_chars(address)),
                    attributes=[], size_limit=2)
        entries = [e.entry_dn for e in conn.entries]
    finally:
        conn.unbind()
    return entries[0] if len(entries) == 1 else None


def check_password(settings: Ldap, address: str, password: str, recorded_dn: str = "") -> bool:
    """True if the directory accepts ``password`` for ``address``. A directory that cannot be
    reached is logged and counts as a failed check (no local fallback: the directory decides)."""
    if not password:
        return False
    try:
        dn = user_dn(settings, address, recorded_dn)
        if dn is None:
            return False
        connect(settings, dn, password).unbind()
        return True
    except LDAPInvalidCredentialsResult:
        return False
    except (LDAPException, DirectoryError, OSError) as exc:
        log.warning("ldap bind for %s failed: %s: %s", address, type(exc).__name__, exc)
        return False
