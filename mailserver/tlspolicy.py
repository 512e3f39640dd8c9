"""TLS levels of Mozilla's server-side guidelines (R-SEC-1), for every listener: ``tls.policy``.

"intermediate" (the default) accepts TLS 1.2 with forward-secret AEAD ciphers only (no static-RSA
key exchange such as ``AES128-SHA``, no CBC) and TLS 1.3; "modern" accepts TLS 1.3 alone, which
old clients (Outlook 2010 on Windows 7, Android 9 and older) cannot speak. The cipher list is the
one Mozilla publishes for "intermediate" (ssl-config.mozilla.org, guidelines v5.7).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from config.settings import Settings

INTERMEDIATE_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
))


def server_ssl_context(settings: Settings) -> ssl.SSLContext:
    """The asyncio listeners' context (SMTP submission, submissions, STARTTLS on the MX)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(settings.tls.cert), str(settings.tls.key))
    if settings.tls.policy == "modern":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(INTERMEDIATE_CIPHERS)
    return ctx


def twisted_tls_options(settings: Settings):
    """The Twisted listeners' options (IMAP, POP3, the portal), same level as above."""
    from twisted.internet import ssl as tssl

    pem = Path(settings.tls.cert).read_bytes() + b"\n" + Path(settings.tls.key).read_bytes()
    cert = tssl.PrivateCertificate.loadPEM(pem)
    modern = settings.tls.policy == "modern"
    return tssl.CertificateOptions(
        privateKey=cert.privateKey.original, certificate=cert.original,
        raiseMinimumTo=tssl.TLSVersion.TLSv1_3 if modern else tssl.TLSVersion.TLSv1_2,
        acceptableCiphers=tssl.AcceptableCiphers.fromOpenSSLCipherString(INTERMEDIATE_CIPHERS),
    )
