"""A self-signed certificate so that STARTTLS and implicit TLS work from the first start.

Operators replace ``tls.cert``/``tls.key`` with a CA-issued pair; an existing pair is never
touched. The key is written 0600 before any byte of it lands on disk (R-SEC-1).
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 825  # the longest validity clients accept for a leaf certificate


def ensure_certificate(cert: Path, key: Path, hostname: str) -> bool:
    """Create a self-signed pair for ``hostname`` (SAN: hostname, localhost, 127.0.0.1) unless
    both files exist. Returns True when it wrote a new pair."""
    cert, key = Path(cert), Path(key)
    if cert.exists() and key.exists():
        return False
    # RSA rather than ECDSA: older desktop clients used in agencies (Outlook 2007 on XP) lack ECDSA.
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names = dict.fromkeys([hostname, "localhost"])
    san: list[x509.GeneralName] = []
    for name in names:
        try:
            san.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            san.append(x509.DNSName(name))
    if x509.IPAddress(ipaddress.ip_address("127.0.0.1")) not in san:
        san.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = _dt.datetime.now(_dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(private, hashes.SHA256())
    )
    key_bytes = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(key, key_bytes, 0o600)
    _write(cert, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return True


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file created with ``mode`` and rename, so a crash leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(fd, mode)  # O_CREAT's mode is masked by umask and ignored for an existing file
        out.write(data)
        out.flush()
        os.fsync(fd)
    os.replace(tmp, path)
