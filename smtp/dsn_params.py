"""RFC 3461 DSN parameters of MAIL (RET, ENVID) and RCPT (NOTIFY, ORCPT): parsing, xtext.

Pure functions; ``ValueError`` carries the reason, which smtp/protocol.py turns into ``501 5.5.4``.
Values are kept decoded (xtext undone) and encoded again when carried to the next hop.
"""

from __future__ import annotations

import re

NOTIFY_ORDER = ("SUCCESS", "FAILURE", "DELAY")
MAX_ENVID = 100  # RFC 3461 4.4: at most 100 characters
MAX_ORCPT = 500  # RFC 3461 4.2: the encoded value at most 500 characters
_HEXCHAR = re.compile(r"\+([0-9A-F]{2})")
_ADDR_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


def xtext_decode(text: str) -> str:
    """xtext (RFC 3461 4): printable ASCII but "+" and "=", and "+XX" hex for any other byte."""
    if any(not (33 <= ord(c) <= 126) or c == "=" for c in text):
        raise ValueError("xtext has a character that must be hex-encoded")
    if "+" in _HEXCHAR.sub("", text):
        raise ValueError("xtext has a '+' not followed by two upper-case hex digits")
    raw = _HEXCHAR.sub(lambda m: chr(int(m.group(1), 16)), text)
    return raw.encode("latin-1").decode("utf-8", "strict") if not raw.isascii() else raw


def xtext_encode(text: str) -> str:
    out = []
    for byte in text.encode("utf-8"):
        c = chr(byte)
        out.append(c if 33 <= byte <= 126 and c not in "+=" else f"+{byte:02X}")
    return "".join(out)


def parse_ret(value: str | bool) -> str:
    if not isinstance(value, str) or value.upper() not in ("FULL", "HDRS"):
        raise ValueError("RET must be FULL or HDRS")
    return value.upper()


def parse_envid(value: str | bool) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("ENVID needs a value")
    envid = xtext_decode(value)
    if len(envid) > MAX_ENVID:
        raise ValueError(f"ENVID longer than {MAX_ENVID} characters")
    return envid


def parse_notify(value: str | bool) -> str:
    """"NEVER" alone, or a non-empty set of SUCCESS, FAILURE, DELAY (normalised order)."""
    if not isinstance(value, str) or not value:
        raise ValueError("NOTIFY needs a value")
    words = [w.strip().upper() for w in value.split(",")]
    if words == ["NEVER"]:
        return "NEVER"
    if not words or any(w not in NOTIFY_ORDER for w in words) or len(set(words)) != len(words):
        raise ValueError("NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY")
    return ",".join(w for w in NOTIFY_ORDER if w in words)


def parse_orcpt(value: str | bool) -> str:
    """``addr-type;xtext`` → ``addr-type;decoded`` (addr-type as given, e.g. rfc822, utf-8)."""
    if not isinstance(value, str) or len(value) > MAX_ORCPT:
        raise ValueError("ORCPT must be addr-type;address, at most 500 characters")
    kind, sep, address = value.partition(";")
    if not sep or not _ADDR_TYPE.match(kind) or not address:
        raise ValueError("ORCPT must be addr-type;address")
    return f"{kind};{xtext_decode(address)}"


def encode_orcpt(orcpt: str) -> str:
    kind, _, address = orcpt.partition(";")
    return f"{kind};{xtext_encode(address)}"


def wants(notify: str | None, action: str) -> bool:
    """Whether a report of ``action`` ("failed", "delayed", "delivered", "relayed", "expanded")
    is owed under ``notify``. Without NOTIFY the default is FAILURE,DELAY (RFC 3461 4.1)."""
    if notify == "NEVER":
        return False
    chosen = set(notify.split(",")) if notify else {"FAILURE", "DELAY"}
    needed = {"failed": "FAILURE", "delayed": "DELAY"}.get(action, "SUCCESS")
    return needed in chosen
