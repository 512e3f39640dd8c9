"""The log lines of logins and limit refusals (R-SEC-1): one fixed format for every protocol, read
by operators and by fail2ban (contrib/fail2ban/, documented in docs/operations.md)::

    login protocol=imap client=203.0.113.7 result=fail reason=credentials user="an@example.gov.vn"
    limit protocol=smtp client=203.0.113.7 limit=connections open=20

The account name is what the client typed: quoted and escaped, and last on the line, so that no
name can end the line or fake the fields before it.
"""

from __future__ import annotations

import logging

from mailserver.policy.metrics import LOGINS

login_log = logging.getLogger("mailserver.login")


def quote(text: str) -> str:
    """A user-typed value for a log line: quoted, with quotes, backslashes and control
    characters escaped, so it can neither end the line nor fake another field."""
    out = []
    for ch in text[:200]:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in "\u2028\u2029":
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def log_login(protocol: str, client: str, user: str, result: str, reason: str) -> None:
    """The one log line of a login: ``result`` ok, fail or refused; ``reason`` one word."""
    login_log.info("login protocol=%s client=%s result=%s reason=%s user=%s", protocol, client, result, reason, quote(user))
    LOGINS.labels(protocol, result).inc()  # /metrics: logins and failed logins by protocol


def log_limit(protocol: str, client: str, what: str, detail: str = "") -> None:
    """The one log line of a refusal by a limit (connections, commands, rates)."""
    login_log.info("limit protocol=%s client=%s limit=%s%s", protocol, client, what, f" {detail}" if detail else "")
