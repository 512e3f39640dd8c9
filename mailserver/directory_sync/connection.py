"""Connections to the directory: ldap:// (optionally StartTLS) or ldaps://, certificates checked
against ``ldap.ca_file`` unless the operator turned that off. One connection per operation: a
bind changes the connection's identity, so user binds never share the service account's."""

from __future__ import annotations

import ssl

from ldap3 import NONE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException

from config.ldap import Ldap

#: Marks an LDAP-backed account in ``password_hash`` (never a valid argon2 hash): ``{LDAP}<dn>``.
LDAP_MARK = "{LDAP}"


class DirectoryError(Exception):
    """The directory could not be reached or refused the service account (one line, no secret)."""


def is_ldap_backed(password_hash: str | None) -> bool:
    return bool(password_hash) and password_hash.startswith(LDAP_MARK)  # type: ignore[union-attr]


class _Tls(Tls):
    """TLS by the standard library's default client context, which checks the certificate and
    the host name itself. ldap3 2.9.1 turns OpenSSL's host-name check off and calls
    ``ssl.match_hostname`` instead (deprecated since Python 3.7, gone in 3.12)."""

    def __init__(self, settings: Ldap) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED if settings.verify_certificates else ssl.CERT_NONE)
        self._context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
        if not settings.verify_certificates:
            self._context.check_hostname = False
            self._context.verify_mode = ssl.CERT_NONE

    def wrap_socket(self, connection, do_handshake=False):
        connection.socket = self._context.wrap_socket(connection.socket, server_side=False,
                                                      do_handshake_on_connect=do_handshake,
                                                      server_hostname=connection.server.host)


def server(settings: Ldap) -> Server:
    assert settings.url is not None
    tls = _Tls(settings) if settings.url.lower().startswith("ldaps:") or settings.start_tls else None
    return Server(settings.url, use_ssl=settings.url.lower().startswith("ldaps:"), tls=tls,
                  get_info=NONE, connect_timeout=settings.timeout)


def connect(settings: Ldap, user: str | None, password: str | None) -> Connection:
    """A bound connection (``user`` None: anonymous). Raises ``LDAPException`` (wrong password:
    ``LDAPInvalidCredentialsResult``); TLS is up before any password is sent."""
    conn = Connection(server(settings), user=user, password=password, receive_timeout=max(1, round(settings.timeout)),  # ldap3 packs it as whole seconds
                      raise_exceptions=True, auto_bind=False, read_only=True)
    try:
        conn.open()
        if settings.start_tls:
            conn.start_tls()
        conn.bind()
    except BaseException:
        conn.unbind()
        raise
    return conn


def service_connection(settings: Ldap) -> Connection:
    """Bound as the service account (``ldap.bind_dn``), for searches; ``DirectoryError`` if not."""
    try:
        return connect(settings, settings.bind_dn, settings.bind_password)
    except LDAPException as exc:
        raise DirectoryError(f"{settings.url}: {type(exc).__name__}: {exc}") from None
    except OSError as exc:
        raise DirectoryError(f"{settings.url}: {exc}") from None
