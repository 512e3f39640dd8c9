"""What a script sees of a message: its header fields (RFC 2047 decoded), addresses, body text,
size and envelope. Built once per delivery from the stored bytes, shared by every recipient."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.utils import getaddresses

#: Body bytes a ``body`` test reads at most (a large attachment is not searched).
BODY_LIMIT = 1024 * 1024


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # a malformed encoded-word: compare the raw text
        return value


def _fields(raw: bytes) -> list[tuple[str, str]]:
    """(lower-case name, unfolded value) of each header field; 8-bit values read as UTF-8
    (RFC 6532), else latin-1."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    head = raw[: min(ends) if ends else len(raw)]
    fields: list[tuple[str, bytes]] = []
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + line)
        elif b":" in line:
            name, _, value = line.partition(b":")
            fields.append((name.strip().decode("ascii", "replace").lower(), value))
    out = []
    for name, value in fields:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = value.decode("latin-1")
        out.append((name, text))
    return out


@dataclass
class MessageView:
    raw: bytes  # header section and (at most BODY_LIMIT of) the body
    size: int  # of the whole message, octets

    def __post_init__(self) -> None:
        self._headers = _fields(self.raw)
        self._msg: email.message.Message | None = None  # parsed for a body test only
        self._texts: dict[tuple, list[str]] = {}

    def header(self, name: str) -> list[str]:
        """Every field named ``name``, decoded, unfolded."""
        name = name.lower()
        return [_decoded(v.strip()) for k, v in self._headers if k == name]

    def raw_header(self, name: str) -> list[str]:
        name = name.lower()
        return [v.strip() for k, v in self._headers if k == name]

    def addresses(self, name: str) -> list[str]:
        return [addr for _n, addr in getaddresses(self.raw_header(name)) if addr]

    def body(self, transform: str = ":text", types: list[str] | None = None) -> list[str]:
        """RFC 5173: ``:raw`` the undecoded body; ``:text`` decoded text parts; ``:content``
        the decoded parts of the listed types ("text", "text/html", "" = all)."""
        if transform == ":raw":
            sep = self.raw.find(b"\r\n\r\n")
            start = sep + 4 if sep >= 0 else len(self.raw)
            return [self.raw[start:].decode("utf-8", "replace")]
        key = (transform, tuple(types or ()))
        if key in self._texts:
            return self._texts[key]
        if self._msg is None:
            self._msg = email.message_from_bytes(self.raw, policy=email.policy.compat32)
        out = self._texts[key] = []
        for part in self._msg.walk():
            if part.is_multipart():
                continue
            ctype = part.get_content_type()
            wanted = types if transform == ":content" and types is not None else ["text"]
            if not any(t == "" or ctype == t.lower() or ctype.split("/")[0] == t.lower() for t in wanted):
                continue
            payload = part.get_payload(decode=True) or b""
            try:
                out.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
            except LookupError:  # an unknown charset
                out.append(payload.decode("utf-8", "replace"))
        return out


@dataclass(frozen=True)
class Envelope:
    sender: str  # MAIL FROM, "" for the null reverse-path
    recipient: str  # the RCPT TO address that reached this account
