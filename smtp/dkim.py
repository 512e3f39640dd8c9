"""DKIM signing of outgoing mail (RFC 6376, RFC 8463, R-SEC-2).

Mail whose From: domain is one of ours and has a key is signed relaxed/relaxed over the header
fields RFC 6376 5.4.1 recommends (those present), From: signed twice so no second From: can be
added. The signature is a header prepended to the message; nothing else changes, so a signed
S/MIME message stays byte for byte. Keys are PEM files ``<data_dir>/dkim/<domain>.<selector>.key``
(``mailserver dkim keygen``, smtp/dkim_keys.py). Two signatures per message at most: RSA with
``dkim.selectors[domain]`` or ``dkim.selector`` (warned about when missing), then Ed25519 with
``dkim.ed25519_selectors[domain]`` or ``dkim.ed25519_selector`` when that key exists (RFC 8463 is
not yet understood everywhere, so it comes in addition, never instead). The RSA field goes on top
for verifiers that read only the first one.

Signing takes ~1 ms (RSA-2048, OpenSSL; smtp/dkim_sign.py) but parses the whole message: call it
in a worker thread (``OutboundService`` does).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from email.utils import getaddresses
from pathlib import Path
from typing import Iterable

import dkim

from smtp.dkim_keys import generate_key, key_path, load_key, txt_record_for
from smtp.dkim_sign import Prepared, SigningKey, signature_field

__all__ = ["DkimSigner", "from_domain", "generate_key", "header_names", "key_path", "txt_record_for"]
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
                 selectors: dict[str, str] | None = None, ed25519_selector: str | None = "ed25519",
                 ed25519_selectors: dict[str, str] | None = None, enabled: bool = True) -> None:  # fmt: skip
        self.data_dir = Path(data_dir)
        self.domains = {d.lower() for d in domains}
        self.selector = selector
        self.selectors = {k.lower(): v for k, v in (selectors or {}).items()}
        self.ed25519_selector = ed25519_selector
        self.ed25519_selectors = {k.lower(): v for k, v in (ed25519_selectors or {}).items()}
        self.enabled = enabled
        self._keys: dict[tuple[str, str], tuple[SigningKey | None, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> "DkimSigner":
        d = settings.dkim
        return cls(settings.data_dir, settings.domains, selector=d.selector, selectors=dict(d.selectors),
                   ed25519_selector=d.ed25519_selector, ed25519_selectors=dict(d.ed25519_selectors),
                   enabled=d.sign)  # fmt: skip

    def selector_for(self, domain: str) -> str:
        return self.selectors.get(domain.lower(), self.selector)

    def ed25519_selector_for(self, domain: str) -> str | None:
        return self.ed25519_selectors.get(domain.lower(), self.ed25519_selector)

    def _key(self, domain: str, selector: str, *, expected: bool) -> SigningKey | None:
        with self._lock:
            cached = self._keys.get((domain, selector))
            if cached and (cached[0] is not None or time.monotonic() - cached[1] < _MISSING_AGAIN):
                return cached[0]
            path = key_path(self.data_dir, domain, selector)
            key = None
            try:
                key = load_key(path)
            except FileNotFoundError:
                if expected:
                    log.warning("no DKIM key %s: mail from %s goes out without this signature", path, domain)
            except (ValueError, TypeError, OSError) as exc:
                log.error("DKIM key %s unusable: %s", path, exc)
            self._keys[(domain, selector)] = (key, time.monotonic())
            return key

    def signature(self, message: bytes) -> bytes:
        """The DKIM-Signature fields to prepend to ``message`` (b"" when not ours / no key)."""
        if not self.enabled:
            return b""
        domain = from_domain(message)
        if domain is None or domain not in self.domains:
            return b""
        wanted = [(self.selector_for(domain), True)]
        if ed := self.ed25519_selector_for(domain):
            wanted.append((ed, False))  # optional: no warning without it
        keys = [(s, k) for s, expected in wanted if (k := self._key(domain, s, expected=expected)) is not None]
        if not keys:
            return b""
        present = header_names(message)
        include = [h.encode() for h in SIGNED_HEADERS if h in present] + [b"from"]  # oversign From
        try:
            prepared = Prepared(message)
        except dkim.DKIMException as exc:
            log.error("DKIM signing for %s failed: %s", domain, exc)
            return b""
        now = int(time.time())
        fields = []
        for selector, key in keys:
            try:
                fields.append(signature_field(prepared, key, selector.encode(), domain.encode(), include, timestamp=now))
            except Exception as exc:  # noqa: BLE001 - a bad key or message leaves the mail unsigned, not stuck
                log.error("DKIM signing for %s (s=%s) failed: %s", domain, selector, exc)
        return b"".join(fields)

    def sign(self, message: bytes) -> bytes:
        """``message`` with its DKIM-Signature fields prepended (unchanged when not ours / no key)."""
        return self.signature(message) + message
