"""Every POP3 reply line the server sends, in one place.

Response codes: RFC 2449 ``[IN-USE]``, RFC 3206 ``[AUTH]`` and ``[SYS/TEMP]``. Texts are generic:
no exception names or storage details ever reach the client; those go to the log.
"""

from __future__ import annotations

from storage.errors import ErrorKind, StoreError

GREETING = b"+OK POP3 server ready"
OK = b"+OK"
BYE = b"+OK Bye"
CAPA = b"+OK Capability list follows"
STLS_GO = b"+OK Begin TLS negotiation"
USER_OK = b"+OK Send PASS"
SASL_CONTINUE = b"+ "
SASL_MECHANISMS = b"+OK Supported SASL mechanisms follow"

ERR_UNKNOWN = b"-ERR Unknown command"
ERR_STATE = b"-ERR Command not valid in this state"
ERR_SYNTAX = b"-ERR Syntax error in arguments"
ERR_TOO_LONG = b"-ERR Line too long"
ERR_NO_SUCH = b"-ERR No such message"
ERR_DELETED = b"-ERR Message already deleted"
ERR_USER_FIRST = b"-ERR Send USER first"
ERR_TLS_ACTIVE = b"-ERR TLS is already active"
ERR_TLS_UNAVAILABLE = b"-ERR TLS is not available"
ERR_MECHANISM = b"-ERR [AUTH] Unsupported SASL mechanism"
ERR_CANCELLED = b"-ERR Authentication cancelled"
ERR_BASE64 = b"-ERR Invalid base64 data"
ERR_AUTH = b"-ERR [AUTH] Authentication failed"
ERR_PLAINTEXT = b"-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS"
ERR_IN_USE = b"-ERR [IN-USE] The maildrop is in use by another POP3 session"
ERR_SYS_TEMP = b"-ERR [SYS/TEMP] Temporary server failure, try again later"
ERR_SYS_TEMP_BLOCKED = b"-ERR [SYS/TEMP] Too many failed logins from your address, try again later"
ERR_SYS_TEMP_CONNECTIONS = b"-ERR [SYS/TEMP] Too many connections from your address, try again later"
ERR_GONE = b"-ERR That message is no longer available"
ERR_TIMEOUT = b"-ERR Autologout: idle too long"


def store_error(error: BaseException) -> bytes:
    """The reply for a storage failure (mapped once here; the caller logs the detail)."""
    if isinstance(error, StoreError) and error.kind is ErrorKind.NOTFOUND:
        return ERR_GONE
    return ERR_SYS_TEMP


def maildrop_ok(count: int, octets: int) -> bytes:
    return b"+OK Maildrop has %d messages (%d octets)" % (count, octets)
