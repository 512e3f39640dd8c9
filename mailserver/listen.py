"""Twisted listeners that read HAProxy's PROXY header (v1, v2) from the configured proxies.

A connection from ``proxy.trusted`` must begin with a PROXY header (mailserver/policy/proxyheader.py);
the protocol behind it is connected only once the header is read, so from its first callback its
``transport.getPeer()`` is the real client (the login guard, the limits, the logs and the
loopback rule for plain-text logins all see that one). Connections from anywhere else are served
as they come. Implicit TLS listeners are TLS inside the PROXY layer: the proxy sends its header in
clear, then relays the client's TLS.
"""

from __future__ import annotations

import logging

from twisted.internet import address
from twisted.protocols import policies
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import directlyProvides, providedBy

from config.settings import Proxy
from mailserver.policy.guard import is_trusted
from mailserver.policy.proxyheader import BadHeader, parse

log = logging.getLogger(__name__)


class _ProxyHeaderReader(policies.ProtocolWrapper):
    """Reads the header, then connects the wrapped protocol with the client as its peer."""

    def makeConnection(self, transport) -> None:
        directlyProvides(self, providedBy(transport))
        self.connected = 1
        self.transport = transport
        self.factory.registerProtocol(self)
        self._buffer = b""
        self._client = None
        self._started = False
        self._timer = self.factory.reactor.callLater(self.factory.settings.timeout, self._too_slow)

    def dataReceived(self, data: bytes) -> None:
        if self._started:
            self.wrappedProtocol.dataReceived(data)
            return
        self._buffer += data
        try:
            header = parse(self._buffer)
        except BadHeader as e:
            log.warning("proxy: %s from %s; closing", e, self.transport.getPeer().host)
            self._stop()
            return
        if header is None:
            return
        self._buffer = b""
        if self._timer.active():
            self._timer.cancel()
        if header.client is not None:
            host, port = header.client
            kind = address.IPv6Address if ":" in host else address.IPv4Address
            self._client = kind("TCP", host, port)
        self._started = True
        self.wrappedProtocol.makeConnection(self)
        if header.rest and self.connected:
            self.wrappedProtocol.dataReceived(header.rest)

    def _too_slow(self) -> None:
        log.warning("proxy: no PROXY header from %s in time; closing", self.transport.getPeer().host)
        self._stop()

    def _stop(self) -> None:
        self.transport.abortConnection()

    def getPeer(self):
        return self._client if self._client is not None else self.transport.getPeer()

    def connectionLost(self, reason) -> None:
        if self._timer.active():
            self._timer.cancel()
        self.factory.unregisterProtocol(self)
        if self._started:
            self.wrappedProtocol.connectionLost(reason)
        self.wrappedProtocol = None  # type: ignore[assignment]


class ProxyFactory(policies.WrappingFactory):
    """Wraps connections from ``settings.trusted`` in the header reader; others go straight through."""

    protocol = _ProxyHeaderReader

    def __init__(self, wrapped, settings: Proxy, reactor) -> None:
        super().__init__(wrapped)
        self.settings = settings
        self.reactor = reactor

    def buildProtocol(self, addr):
        if is_trusted(getattr(addr, "host", ""), self.settings.trusted):
            return super().buildProtocol(addr)
        return self.wrappedFactory.buildProtocol(addr)


def listen(reactor, settings: Proxy, port: int, factory, *, interface: str, tls=None, backlog: int = 50):
    """Listen on ``interface:port``: implicit TLS with ``tls`` (CertificateOptions), and the PROXY
    header from ``settings.trusted`` when any. Returns the IListeningPort."""
    if not settings.trusted:
        if tls is not None:
            return reactor.listenSSL(port, factory, tls, backlog=backlog, interface=interface)
        return reactor.listenTCP(port, factory, backlog=backlog, interface=interface)
    if tls is not None:
        factory = TLSMemoryBIOFactory(tls, False, factory)
    return reactor.listenTCP(port, ProxyFactory(factory, settings, reactor), backlog=backlog, interface=interface)

