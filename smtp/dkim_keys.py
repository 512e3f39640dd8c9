"""DKIM key files and the DNS records that publish them (RFC 6376 3.6.1, RFC 8463 4).

A key is a PEM file ``<data_dir>/dkim/<domain>.<selector>.key`` (mode 0600): RSA (TraditionalOpenSSL,
as before) or Ed25519 (PKCS#8). The file's key type decides the signature algorithm. The TXT
value is ``v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo, base64>`` or ``v=DKIM1; k=ed25519; p=<the
32 raw public key bytes, base64>``.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from smtp.dkim_sign import SigningKey

KeyType = Literal["rsa", "ed25519"]


def key_path(data_dir: Path, domain: str, selector: str) -> Path:
    return Path(data_dir) / "dkim" / f"{domain.lower()}.{selector}.key"


def load_key(path: Path) -> SigningKey:
    """The private key in ``path``; ValueError for anything but RSA (≥ 1024 bits) or Ed25519."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 1024:
        raise ValueError(f"{path}: RSA key of {key.key_size} bits (verifiers refuse < 1024, RFC 8301 3.2)")
    if not isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise ValueError(f"{path}: {type(key).__name__} is no DKIM key type (rsa, ed25519)")
    return key


def txt_record(key: SigningKey) -> str:
    """The TXT value that publishes ``key``'s public half."""
    public = key.public_key()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def txt_record_for(path: Path) -> str:
    """The TXT value for an existing private key file."""
    return txt_record(load_key(path))


def generate_key(data_dir: Path, domain: str, selector: str, *, kind: KeyType = "rsa", bits: int = 2048) -> tuple[Path, str]:
    """Write a new key (mode 0600) and return (path, the DNS TXT record's value).
    Refuses to overwrite an existing key (rotation uses a new selector)."""
    path = key_path(data_dir, domain, selector)
    if path.exists():
        raise FileExistsError(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key: SigningKey
    if kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
        fmt = serialization.PrivateFormat.PKCS8
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        fmt = serialization.PrivateFormat.TraditionalOpenSSL
    pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return path, txt_record(key)
