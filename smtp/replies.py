"""Every SMTP reply this server produces, and the ONE mapping from storage errors to replies.

Replies carry RFC 3463 enhanced status codes (RFC 2034 ENHANCEDSTATUSCODES is advertised), except
the greeting, the EHLO/HELO answer, 354 and AUTH challenges, which RFC 2034 exempts. Replies that
aiosmtpd itself produces get a code from ``enhance()`` in ``smtp.protocol.MailSMTP.push``.
Client texts are generic (no internals reach a client); details go to the log.
"""

from __future__ import annotations

import re

from storage.errors import ErrorKind

# -- success ---------------------------------------------------------------------------------------
S250_OK = "250 2.0.0 OK"
S250_SENDER_OK = "250 2.1.0 Sender OK"
S250_RECIPIENT_OK = "250 2.1.5 Recipient OK"
S250_QUEUED = "250 2.0.0 OK: message accepted id={id}"
S221_BYE = "221 2.0.0 Bye"
S220_READY_TLS = "220 2.0.0 Ready to start TLS"
S354_START = "354 End data with <CR><LF>.<CR><LF>"

# -- transient -------------------------------------------------------------------------------------
S421_TIMEOUT = "421 4.4.2 {host} Error: timeout exceeded, closing connection"
S451_TEMP = "451 4.3.0 Temporary failure, please try again later"
S452_TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
S452_RCPT_QUOTA = "452 4.2.2 Mailbox full, try again later"  # R-QUOTA-1, per recipient at RCPT
S454_TLS_UNAVAILABLE = "454 4.7.0 TLS not available"
S451_RATE = "451 4.7.1 Sending limit per hour reached, try again later"
S454_BLOCKED = "454 4.7.0 Too many failed logins from your address, try again later"
S421_CONNECTIONS = "421 4.7.0 Too many connections from your address, try again later"
S421_TOO_MANY_COMMANDS = "421 4.7.0 Too many commands in one session, closing connection"
S421_TOO_MANY_ERRORS = "421 4.7.0 Too many bad commands, closing connection"

# -- permanent: syntax and sequence ----------------------------------------------------------------
S500_LINE_TOO_LONG = "500 5.5.2 Line too long"
S500_SYNTAX = "500 5.5.2 Syntax error"
S501_MAIL_SYNTAX = "501 5.1.7 Syntax: MAIL FROM:<address> [SP <parameters>]"
S501_RCPT_SYNTAX = "501 5.1.3 Syntax: RCPT TO:<address> [SP <parameters>]"
S501_DATA_SYNTAX = "501 5.5.4 Syntax: DATA"
S501_BODY = "501 5.5.4 BODY must be 7BIT or 8BITMIME"
S501_SMTPUTF8 = "501 5.5.4 SMTPUTF8 takes no value"
S501_SIZE = "501 5.5.4 SIZE must be a number"
S501_DSN_PARAM = "501 5.5.4 {reason}"  # RFC 3461 parameter with a bad value
S501_BDAT_SYNTAX = "501 5.5.4 Syntax: BDAT chunk-size [LAST]"  # the stream is out of step: closed
S501_NO_VALUE = "501 5.5.4 {key} takes no value"
S530_REQUIRETLS = "530 5.7.10 REQUIRETLS needs a TLS session (STARTTLS first)"
S503_BDAT_ONLY = "503 5.5.1 BDAT was used or BODY=BINARYMIME given: send the message with BDAT"
S250_CHUNK = "250 2.0.0 {size} octets received ({total} in all)"
S503_NEED_HELO = "503 5.5.1 Send HELO or EHLO first"
S503_NESTED_MAIL = "503 5.5.1 Sender already given"
S503_NEED_MAIL = "503 5.5.1 Need MAIL command"
S503_NEED_RCPT = "503 5.5.1 Need RCPT command"
S555_MAIL_PARAMS = "555 5.5.4 MAIL FROM parameters not recognized or not implemented"
S555_RCPT_PARAMS = "555 5.5.4 RCPT TO parameters not recognized or not implemented"

# -- permanent: policy -----------------------------------------------------------------------------
S550_NO_SUCH_USER = "550 5.1.1 No such user here"
S550_RELAY_DENIED = "550 5.7.1 Relaying denied"  # never an open relay (R-SEC-1)
S550_MAILBOX_DISABLED = "550 5.2.1 Mailbox disabled, not accepting messages"  # R-LIFE-*
S550_GROUP_EMPTY = "550 5.2.1 Group has no member who can receive"  # R-BOX-4
S550_GROUP_SENDER = "550 5.7.1 Sender may not post to this group"  # R-BOX-4 send policy
S552_MESSAGE_TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"
S552_QUOTA = "552 5.2.2 Mailbox full"  # R-QUOTA-1, at DATA
S553_SENDER_NOT_OWNED = "553 5.7.1 Sender address not owned by the authenticated user"  # R-ACC-1
S553_FROM_NOT_OWNED = "553 5.7.1 From: address not owned by the authenticated user"  # R-ACC-1

# -- content filters (R-SEC-1, smtp/filters) -------------------------------------------------------
S451_FILTER = "451 4.7.1 Message could not be checked now, please try again later"
S451_MILTER = "451 4.7.1 Message deferred by a content filter, please try again later"
S550_SPAM = "550 5.7.1 Message refused as spam"
S550_MILTER = "550 5.7.1 Message refused by a content filter"
S550_DMARC = "550 5.7.1 Message refused by the DMARC policy of its From domain"
S554_VIRUS = "554 5.7.1 Message refused: it carries a virus"

# -- authentication (submission) -------------------------------------------------------------------
S235_AUTH_OK = "235 2.7.0 Authentication successful"
S501_AUTH_BASE64 = "501 5.5.2 Cannot decode base64"
S501_AUTH_ABORTED = "501 5.7.0 Authentication aborted"
S535_AUTH_FAILED = "535 5.7.8 Authentication credentials invalid"
S530_LOGIN_LAPSED = "530 5.7.0 Authentication no longer valid, please log in again"  # revoked/locked/reset since AUTH
S554_FAILED = "554 5.0.0 Transaction failed"

# The one mapping from storage error kinds to replies, per stage of the transaction.
_RCPT_ERRORS: dict[ErrorKind, str] = {
    ErrorKind.NOQUOTA: S452_RCPT_QUOTA,
    ErrorKind.NOTFOUND: S550_NO_SUCH_USER,
    ErrorKind.TOOBIG: S552_MESSAGE_TOO_BIG,
    ErrorKind.NOPERM: S550_MAILBOX_DISABLED,
    ErrorKind.TEMP: S451_TEMP,
}
_DATA_ERRORS: dict[ErrorKind, str] = {
    ErrorKind.NOQUOTA: S552_QUOTA,
    ErrorKind.NOTFOUND: S550_NO_SUCH_USER,
    ErrorKind.TOOBIG: S552_MESSAGE_TOO_BIG,
    ErrorKind.NOPERM: S550_MAILBOX_DISABLED,
    ErrorKind.TEMP: S451_TEMP,
}


def for_error(kind: ErrorKind | str, stage: str) -> str:
    """The reply for a storage error kind at ``stage`` ("MAIL", "RCPT" or "DATA"; MAIL uses
    the DATA table: it is about the whole message).

    Anything unexpected (EXISTS, INVALID, an unknown kind) is a temporary failure: the sender
    retries rather than bouncing mail because of a server-side problem.
    """
    table = _RCPT_ERRORS if stage == "RCPT" else _DATA_ERRORS
    try:
        return table.get(ErrorKind(kind), S451_TEMP)
    except ValueError:
        return S451_TEMP


# -- enhanced codes for replies produced by aiosmtpd itself ----------------------------------------
_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}(?: |$)")
_BASIC = re.compile(r"^(\d{3})([ -])(.*)$", re.DOTALL)
#: Default class.subject.detail per basic code (RFC 3463 section 3.1 "other or undefined").
_DEFAULT_ENHANCED = {
    "211": "2.0.0", "214": "2.0.0", "220": "2.0.0", "221": "2.0.0", "235": "2.7.0",
    "250": "2.0.0", "251": "2.1.5", "252": "2.5.0",
    "421": "4.3.0", "432": "4.7.12", "450": "4.2.0", "451": "4.3.0", "452": "4.3.1",
    "454": "4.7.0", "455": "4.5.4",
    "500": "5.5.2", "501": "5.5.4", "502": "5.5.1", "503": "5.5.1", "504": "5.5.4",
    "530": "5.7.0", "534": "5.7.9", "535": "5.7.8", "538": "5.7.11",
    "550": "5.0.0", "551": "5.1.6", "552": "5.3.4", "553": "5.1.3", "554": "5.0.0", "555": "5.5.4",
}  # fmt: skip
#: Replies that carry no enhanced code (RFC 2034 section 3: greeting, EHLO; 3xx intermediates).
_EXEMPT_PREFIXES = ("334", "354")


def enhance(status: str) -> str:
    """Insert the default enhanced code into a reply that lacks one (aiosmtpd's own replies)."""
    if status.startswith(_EXEMPT_PREFIXES) or _HAS_ENHANCED.match(status):
        return status
    m = _BASIC.match(status)
    if m is None:
        return status
    code, sep, text = m.groups()
    enhanced = _DEFAULT_ENHANCED.get(code)
    if enhanced is None:
        enhanced = f"{code[0]}.0.0" if code[0] in "245" else None
    if enhanced is None:
        return status
    text = text.removeprefix("Error: ")
    return f"{code}{sep}{enhanced} {text}".rstrip()
