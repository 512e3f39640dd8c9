"""One DKIM-Signature field (RFC 6376 3.5, 5): dkimpy parses and canonicalises, OpenSSL signs.

dkimpy's own ``sign`` does RSA in pure Python (~8 ms a signature, holding the GIL). Here the
message parse, relaxed canonicalisation, header selection (bottom-up, oversigning), folding and
the b= blanking are dkimpy's functions; only the private-key operation is ``cryptography``'s:
RSASSA-PKCS1-v1_5 over the SHA-256 digest (deterministic, so the field is byte for byte what
``dkim.sign`` makes) or Ed25519 over that digest (RFC 8463 3). Tags are dkimpy's, in its order.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Sequence

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils
from dkim.canonicalization import CanonicalizationPolicy

RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_NAME = b"DKIM-Signature"
SigningKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def algorithm_of(key: SigningKey) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return b"ed25519-sha256"
    if isinstance(key, rsa.RSAPrivateKey):
        return b"rsa-sha256"
    raise TypeError(f"no DKIM algorithm for {type(key).__name__}")


class Prepared:
    """A message parsed and its body hashed once, for any number of signatures."""

    __slots__ = ("headers", "body_hash")

    def __init__(self, message: bytes) -> None:
        headers, body = dkim.rfc822_parse(message)
        self.headers = RELAXED.canonicalize_headers(headers)
        self.body_hash = base64.b64encode(hashlib.sha256(RELAXED.canonicalize_body(body)).digest())


def signature_field(prepared: Prepared, key: SigningKey, selector: bytes, domain: bytes,
                    include: Sequence[bytes], *, timestamp: int | None = None) -> bytes:  # fmt: skip
    """``DKIM-Signature: …\\r\\n`` (relaxed/relaxed) over the ``include`` fields (lower case,
    signed bottom-up as often as listed) and the body."""
    include = tuple(h.lower() for h in include)
    if b"from" not in include:
        raise ValueError("From must be signed (RFC 6376 5.4)")
    fields = [
        (b"v", b"1"),
        (b"a", algorithm_of(key)),
        (b"c", RELAXED.to_c_value()),
        (b"d", domain),
        (b"i", b"@" + domain),
        (b"q", b"dns/txt"),
        (b"s", selector),
        (b"t", str(int(time.time()) if timestamp is None else timestamp).encode("ascii")),
        (b"h", b" : ".join(include)),
        (b"bh", prepared.body_hash),
        (b"b", b"0" * 60),  # a placeholder that puts b= on its own line, as dkimpy does
    ]
    value = dkim.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(_NAME))
    value = dkim.RE_BTAG.sub(b"\\1", value)
    h = hashlib.sha256()
    dkim.hash_headers(h, RELAXED, prepared.headers, include, (_NAME, b" " + value), dict(fields))
    digest = h.digest()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(digest)
    else:
        signature = key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    fields[-1] = (b"b", base64.b64encode(signature))
    value = dkim.fold(b"; ".join(b"=".join(f) for f in fields) + b"\r\n", namelen=len(_NAME))
    return _NAME + b": " + value
