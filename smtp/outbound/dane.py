"""DANE for SMTP (RFC 7672): an MX host whose TLSA records come with a DNSSEC-validated answer
(the AD bit of the configured, validating resolver) must be reached over STARTTLS, and its
certificate must match one of them; otherwise the host is skipped and the mail waits.

Usable records (RFC 7672 3.1): DANE-EE(3) — the server's own certificate or public key matches,
no name or expiry check; DANE-TA(2) — a certificate the server presents matches and is the trust
anchor of a chain to the server's certificate valid for the MX host name (checked with
``cryptography.x509.verification``). PKIX-TA(0)/PKIX-EE(1) are unusable for SMTP and ignored.
Selectors: 0 full certificate, 1 SubjectPublicKeyInfo; matching: 0 exact, 1 SHA-256, 2 SHA-512.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

DANE_TA, DANE_EE = 2, 3


@dataclass(frozen=True, slots=True)
class Tlsa:
    usage: int
    selector: int
    mtype: int
    data: bytes

    @classmethod
    def parse(cls, text: str) -> "Tlsa":
        """``"3 1 1 <hex>"`` (presentation format)."""
        usage, selector, mtype, *hexdata = text.split()
        return cls(int(usage), int(selector), int(mtype), bytes.fromhex("".join(hexdata)))


def usable(records: Sequence[Tlsa]) -> list[Tlsa]:
    """The records SMTP may use (RFC 7672 3.1.3): DANE-TA/DANE-EE with known selector and matching."""
    return [r for r in records if r.usage in (DANE_TA, DANE_EE) and r.selector in (0, 1) and r.mtype in (0, 1, 2)]


def _digest(cert: x509.Certificate, selector: int, mtype: int) -> bytes:
    data = cert.public_bytes(Encoding.DER) if selector == 0 else cert.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # fmt: skip
    return data if mtype == 0 else hashlib.sha256(data).digest() if mtype == 1 else hashlib.sha512(data).digest()


def matches(cert: x509.Certificate, record: Tlsa) -> bool:
    return _digest(cert, record.selector, record.mtype) == record.data


def check(chain_der: Sequence[bytes], records: Sequence[Tlsa], host: str) -> str | None:
    """None when the presented ``chain_der`` (leaf first) satisfies a usable record for ``host``;
    else why not (for the queue's last reply)."""
    records = usable(records)
    if not records:
        return "no usable TLSA record"
    if not chain_der:
        return "the server presented no certificate"
    chain = [x509.load_der_x509_certificate(c) for c in chain_der]
    leaf = chain[0]
    if any(matches(leaf, r) for r in records if r.usage == DANE_EE):
        return None
    for record in (r for r in records if r.usage == DANE_TA):
        for anchor in chain:
            if not matches(anchor, record):
                continue
            intermediates = [c for c in chain[1:] if c is not anchor]
            try:
                verifier = PolicyBuilder().store(Store([anchor])).build_server_verifier(x509.DNSName(host))
                verifier.verify(leaf, intermediates)
                return None
            except (VerificationError, ValueError) as exc:
                return f"certificate does not chain to the DANE-TA anchor for {host}: {exc}"
    return "the certificate matches no TLSA record"


def peer_chain(ssl_object) -> list[bytes]:
    """DER certificates the server sent, leaf first. Python 3.13 has ``get_unverified_chain``;
    3.11/3.12 have it on the private ``_sslobj`` (docs/libraries.md)."""
    getter = getattr(ssl_object, "get_unverified_chain", None)
    if getter is None:
        getter = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if getter is not None:
        chain = getter() or []
        return [c if isinstance(c, bytes) else c.public_bytes(_DER) for c in chain]
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


_DER = 2  # _ssl.ENCODING_DER
