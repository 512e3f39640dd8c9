"""DKIM signing of outgoing mail with dkimpy (RFC 6376, R-SEC-2).

Mail whose From: domain is one of ours and has a key is signed relaxed/relaxed over the header
fields RFC 6376 5.4.1 recommends (those present), From: signed twice so no second From: can be
added. The signature is a header prepended to the message; nothing else changes, so a signed
S/MIME message stays byte for byte. Keys are PEM files ``<data_dir>/dkim/<domain>.<selector>.key``
(``mailserver dkim keygen``); the selector is ``dkim.selectors[domain]`` or ``dkim.selector``.

dkimpy's RSA is pure Python (~8 ms per signature, holding the GIL): call ``sign`` in a worker
thread (``OutboundService`` does).
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from email.utils import getaddresses
from pathlib import Path
from typing import Iterable

import dkim

log = logging.getLogger("smtp.dkim")

#: RFC 6376 5.4.1, plus the MIME fields that make a signed body meaningful.
SIGNED_HEADERS = (
    "from", "reply-to", "subject", "date", "to", "cc", "resent-date", "resent-from", "resent-to",
    "resent-cc", "in-reply-to", "references", "list-id", "list-help", "list-unsubscribe",
    "list-subscribe", "list-post", "list-owner", "list-archive", "message-id", "mime-version",
    "content-type", "content-transfer-encoding",
)
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:", re.MULTILINE)
_MISSING_AGAIN = 60.0  # seconds before looking again for a key that was missing


def key_path(data_dir: Path, domain: str, selector: str) -> Path:
    return Path(data_dir) / "dkim" / f"{domain.lower()}.{selector}.key"


def header_names(message: bytes) -> list[str]:
    """Lower-case names of the header fields of ``message`` (up to the blank line)."""
    end = message.find(b"\r\n\r\n")
    head = message if end < 0 else message[: end + 2]
    names = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            continue
        m = _FIELD.match(line)
        if m:
            names.append(m.group(1).decode("ascii", "replace").lower())
    return names


def from_domain(message: bytes) -> str | None:
    """Domain of the first address in the From: field."""
    end = message.find(b"\r\n\r\n")
    head = (message if end < 0 else message[:end]).replace(b"\r\n\t", b" ").replace(b"\r\n ", b" ")
    for line in head.split(b"\r\n"):
        if line[:5].lower() == b"from:":
            value = line[5:].decode("utf-8", "replace")
            for _name, address in getaddresses([value]):
                if "@" in address:
                    return address.rpartition("@")[2].lower().rstrip(".") or None
    return None


class DkimSigner:
    """Signs for the local domains that have a key. Thread-safe."""

    def __init__(self, data_dir: Path, domains: Iterable[str], *, selector: str = "mail",
                 selectors: dict[str, str] | None = None, enabled: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.domains = {d.lower() for d in domains}
        self.selector = selector
        self.selectors = {k.lower(): v for k, v in (selectors or {}).items()}
        self.enabled = enabled
        self._keys: dict[str, tuple[bytes | None, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> "DkimSigner":
        d = settings.dkim
        return cls(settings.data_dir, settings.domains, selector=d.selector, selectors=dict(d.selectors), enabled=d.sign)

    def selector_for(self, domain: str) -> str:
        return self.selectors.get(domain.lower(), self.selector)

    def _key(self, domain: str) -> bytes | None:
        with self._lock:
            cached = self._keys.get(domain)
            if cached and (cached[0] is not None or time.monotonic() - cached[1] < _MISSING_AGAIN):
                return cached[0]
            path = key_path(self.data_dir, domain, self.selector_for(domain))
            try:
                key = path.read_bytes()
            except FileNotFoundError:
                key = None
                log.warning("no DKIM key %s: mail from %s goes out unsigned", path, domain)
            self._keys[domain] = (key, time.monotonic())
            return key

    def sign(self, message: bytes) -> bytes:
        """``message`` with a DKIM-Signature prepended, or unchanged when not ours / no key."""
        if not self.enabled:
            return message
        domain = from_domain(message)
        if domain is None or domain not in self.domains:
            return message
        key = self._key(domain)
        if key is None:
            return message
        present = header_names(message)
        include = [h for h in SIGNED_HEADERS if h in present] + ["from"]  # oversign From
        try:
            signature = dkim.sign(
                message, self.selector_for(domain).encode(), domain.encode(), key,
                canonicalize=(b"relaxed", b"relaxed"), include_headers=[h.encode() for h in include],
            )  # fmt: skip
        except dkim.DKIMException as exc:
            log.error("DKIM signing for %s failed: %s", domain, exc)
            return message
        return signature + message


def generate_key(data_dir: Path, domain: str, selector: str, *, bits: int = 2048) -> tuple[Path, str]:
    """Write a new RSA key (mode 0600) and return (path, the DNS TXT record's value).
    Refuses to overwrite an existing key (rotation uses a new selector)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path = key_path(data_dir, domain, selector)
    if path.exists():
        raise FileExistsError(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())  # fmt: skip
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return path, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"


def txt_record_for(path: Path) -> str:
    """The TXT value for an existing private key file."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"
