"""Port 465 (implicit TLS) behind a PROXY-speaking load balancer (R-SEC-1): the PROXY header
comes in clear before TLS, as HAProxy's ``send-proxy`` sends it, and names the client for the
login guard and the log. A direct client still gets TLS from its first byte; anything else
from the proxy's address is closed unserved. smtplib over real sockets, from 127.0.0.3 (the proxy)."""

from __future__ import annotations

import re
import smtplib
import socket
import ssl

import pytest

PROXY = "127.0.0.3"
PASSWORD = "Bench-pass-2026!"


def proxy_v1(client: str) -> bytes:
    return f"PROXY TCP4 {client} 127.0.0.1 40000 465\r\n".encode()


class ProxiedSMTP(smtplib.SMTP_SSL):
    """SMTP_SSL whose socket first sends a PROXY header in clear; with ``together`` the header
    and the TLS ClientHello leave in one write (one read on the server)."""

    def __init__(self, port: int, header: bytes, together: bool) -> None:
        self._header, self._together = header, together
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        super().__init__("127.0.0.1", port, local_hostname="client.test", timeout=30, context=ctx)

    def _get_socket(self, host, port, timeout):
        raw = socket.create_connection((host, port), timeout, source_address=(PROXY, 0))
        if not self._together:
            raw.sendall(self._header)
            return self.context.wrap_socket(raw, server_hostname=host)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.context.wrap_bio(incoming, outgoing, server_hostname=host)
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        raw.sendall(self._header + outgoing.read())  # PROXY header and ClientHello in one segment
        while True:  # finish the handshake over the socket by hand, then hand smtplib a wrapped one
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if outgoing.pending:
                    raw.sendall(outgoing.read())
                data = raw.recv(65536)
                if not data:
                    raise ConnectionError("closed during the handshake")
                incoming.write(data)
        if outgoing.pending:
            raw.sendall(outgoing.read())
        return _BioSocket(raw, tls, incoming, outgoing)


class _BioSocket:
    """Enough of a socket for smtplib over an SSLObject (makefile, sendall, close)."""

    def __init__(self, raw, tls, incoming, outgoing):
        self.raw, self.tls, self.incoming, self.outgoing = raw, tls, incoming, outgoing

    def sendall(self, data: bytes) -> None:
        self.tls.write(data)
        self.raw.sendall(self.outgoing.read())

    def recv(self, n: int) -> bytes:
        while True:
            try:
                return self.tls.read(n)
            except ssl.SSLWantReadError:
                data = self.raw.recv(65536)
                if not data:
                    return b""
                self.incoming.write(data)

    def makefile(self, mode: str):
        import io

        sock = self

        class Reader(io.RawIOBase):
            def readable(self):
                return True

            def readinto(self, b):
                data = sock.recv(len(b))
                b[: len(data)] = data
                return len(data)

        return io.BufferedReader(Reader())

    def close(self) -> None:
        self.raw.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from tests.conftest import Server

    server = Server(tmp_path_factory.mktemp("proxy465"), "sqlite", {"proxy": {"trusted": [f"{PROXY}/32"]}})
    try:
        server.start()
        server.add_account(f"annv@{server.domain}", PASSWORD)
        yield server
    finally:
        server.destroy()


@pytest.mark.parametrize("together", [False, True])
def test_proxy_header_before_tls_on_465_names_the_client(srv, together):
    client = "198.51.100.21" if together else "198.51.100.20"
    with ProxiedSMTP(srv.port("submissions"), proxy_v1(client), together) as c:
        c.ehlo("client.test")
        assert c.login(f"annv@{srv.domain}", PASSWORD)[0] == 235
    assert re.search(rf"login protocol=submission client={re.escape(client)} result=ok", srv.log())


def test_direct_client_gets_tls_at_once_and_a_headerless_proxy_is_closed(srv):
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP_SSL("127.0.0.1", srv.port("submissions"), local_hostname="client.test", timeout=30, context=ctx) as c:
        assert c.ehlo("client.test")[0] == 250
        assert c.login(f"annv@{srv.domain}", PASSWORD)[0] == 235
    with socket.create_connection(("127.0.0.1", srv.port("submissions")), 30, source_address=(PROXY, 0)) as raw:
        raw.sendall(b"EHLO x\r\n")
        assert raw.recv(100) == b""  # not a PROXY header: closed, no greeting


def _https_get(port: int, path: str, header: bytes) -> int:
    """GET over TLS from the proxy's address, the PROXY header in clear first; the status code."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), 30, source_address=(PROXY, 0)) as raw:
        raw.sendall(header)
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: mail\r\nConnection: close\r\n\r\n".encode())
            status = b""
            while b"\r\n" not in status:
                chunk = tls.recv(1024)
                if not chunk:
                    break
                status += chunk
    return int(status.split(b" ", 2)[1])


def test_portal_behind_the_proxy_sees_the_client_the_header_names(make_server):
    """/metrics answers loopback clients only (web.metrics_from): through the proxy, a header
    naming 127.0.0.1 is let in, one naming an outside address finds nothing there."""
    from tests.conftest import free_port, wait_until

    port = free_port()
    srv = make_server({"listeners": {"web": {"address": "127.0.0.1", "port": port}},
                       "proxy": {"trusted": [f"{PROXY}/32"]}})
    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, what="the portal listening")
    assert _https_get(port, "/metrics", proxy_v1("127.0.0.1")) == 200
    assert _https_get(port, "/metrics", proxy_v1("198.51.100.30")) == 404  # hidden from other networks
