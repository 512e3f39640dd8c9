"""TLS at Mozilla's levels on every implicit-TLS listener (R-SEC-1, ``tls.policy``), and HSTS on
the portal: real handshakes from Python's ssl client with the cipher or version under test."""

from __future__ import annotations

import socket
import ssl
import urllib.request

import pytest

from tests.conftest import Server, free_port

pytestmark = pytest.mark.requirement("R-SEC-1")
IMPLICIT = ("imaps", "pop3s", "submissions", "web")


def _client(maximum: ssl.TLSVersion | None = None, ciphers: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if maximum is not None:
        ctx.maximum_version = maximum
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    return ctx


def _port(server, service: str) -> int:
    return server.settings.listeners.web.port if service == "web" else server.port(service)


def handshake(server, service: str, ctx: ssl.SSLContext) -> tuple[str, str] | None:
    """(version, cipher) agreed, or None when the server refused the handshake."""
    with socket.create_connection((server.host, _port(server, service)), timeout=30) as raw:
        try:
            with ctx.wrap_socket(raw) as tls:
                return tls.version(), tls.cipher()[0]
        except (ssl.SSLError, ConnectionResetError):
            return None


def _started(root, extra: dict):
    # TLS is the listeners' business, not the store's: one backend is enough.
    srv = Server(root, "sqlite", {"listeners": {"web": {"address": "127.0.0.1", "port": free_port()}}, **extra})
    try:
        srv.start()
        yield srv
    finally:
        srv.destroy()


@pytest.fixture(scope="module")
def intermediate(tmp_path_factory):
    yield from _started(tmp_path_factory.mktemp("tls-intermediate"), {})


@pytest.fixture(scope="module")
def modern(tmp_path_factory):
    yield from _started(tmp_path_factory.mktemp("tls-modern"), {"tls": {"policy": "modern"}})


@pytest.mark.parametrize("service", IMPLICIT)
def test_intermediate_refuses_ciphers_without_forward_secrecy(intermediate, service):
    static_rsa = _client(ssl.TLSVersion.TLSv1_2, "AES128-SHA:AES256-SHA:AES128-GCM-SHA256")
    assert handshake(intermediate, service, static_rsa) is None
    cbc_ecdhe = _client(ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-SHA")
    assert handshake(intermediate, service, cbc_ecdhe) is None
    agreed = handshake(intermediate, service, _client(ssl.TLSVersion.TLSv1_2))
    assert agreed is not None and agreed[0] == "TLSv1.2" and agreed[1].startswith("ECDHE-")
    assert handshake(intermediate, service, _client())[0] == "TLSv1.3"


@pytest.mark.parametrize("service", IMPLICIT)
def test_modern_accepts_tls_1_3_only(modern, service):
    assert handshake(modern, service, _client(ssl.TLSVersion.TLSv1_2)) is None
    assert handshake(modern, service, _client())[0] == "TLSv1.3"


def test_the_portal_sends_hsts_over_https(intermediate):
    url = f"https://127.0.0.1:{intermediate.settings.listeners.web.port}/healthz"
    with urllib.request.urlopen(url, context=_client(), timeout=30) as response:
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
