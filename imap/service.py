"""IMAP listeners: ``listeners.imap`` (STARTTLS) and ``listeners.imaps`` (implicit TLS).

Called once by mailserver/app.py, the composition root, on the reactor's thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from twisted.internet import protocol

from imap.deps import ConnectionLimiter, LoginGuard, OrgProvider, QuotaProvider, SessionRegistry
from imap.notify import ChangeHub
from imap.prerender import Prerenderer

#: Listen backlog (the kernel caps it at net.core.somaxconn, 4096 by default). Twisted's default
#: of 50, and 1024 still, overflow when thousands of clients connect at once while the reactor is
#: busy: Linux then drops the handshake's last ACK, the client believes it is connected, the
#: server never accepts it, and the client waits for a greeting forever (measured: ~160 of 5,000
#: IDLE clients; TcpExtListenOverflows counts them).
BACKLOG = 4096


@dataclass
class ServerContext:
    """What every IMAP connection shares: configuration, store, authenticator, TLS, hub."""

    reactor: object
    settings: object
    store: object
    auth: object
    tls: object  # twisted CertificateOptions for STARTTLS, or None
    hub: ChangeHub
    quota: QuotaProvider  # limits and RFC 9208 figures (mailserver.mailboxes.quota.QuotaService)
    org: OrgProvider | None = None  # units and delegation (storage.api.Organisation); None: no shared namespace
    connections: set = field(default_factory=set)
    #: LOGINs being verified, by (username, keyed hash of the password) → Deferreds waiting on it
    logins_in_flight: dict = field(default_factory=dict)
    login_key: bytes = field(default_factory=lambda: os.urandom(32))
    #: account id → (expiry, RFC 9208 resource names) for the QUOTA=RES-* capabilities
    quota_names: dict = field(default_factory=dict)
    #: re-checks the accounts of logged-in sessions (mailserver/sessions.py); None: never
    guard: SessionRegistry | None = None
    #: renders new mail's ENVELOPE/BODYSTRUCTURE while the store is quiet; None: not running
    prerender: Prerenderer | None = None
    #: the login guard (mailserver/accounts/guard.py); None: logins are neither delayed nor logged
    logins: LoginGuard | None = None
    #: connections at once per client address; None: no limit
    limits: ConnectionLimiter | None = None


class IMAPFactory(protocol.ServerFactory):
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def buildProtocol(self, addr):
        from imap.server import IMAPServer

        p = IMAPServer(self.ctx)
        p.factory = self
        return p


def start_imap(reactor, settings, store, auth, tls, *, quota: QuotaProvider, org: OrgProvider | None,
               guard: SessionRegistry | None = None, logins: LoginGuard | None = None,
               limits: ConnectionLimiter | None = None, proxy=None) -> list:
    """Start the configured IMAP listeners; returns their IListeningPorts.

    ``quota`` decides APPEND/COPY/MOVE limits and answers GETQUOTA; ``org`` (units, delegation)
    gives the shared namespace and SASL authorization identities; ``logins`` guards logins
    against guessing, ``limits`` counts connections per client address; ``proxy(port, factory,
    interface=, tls=, backlog=)`` listens instead of the reactor, reading the PROXY header of
    connections from the configured proxies (mailserver/listen.py)."""
    listeners = settings.listeners
    if listeners.imap is None and listeners.imaps is None:
        return []
    ctx = ServerContext(reactor, settings, store, auth, tls, ChangeHub(reactor, store), quota, org, guard=guard,
                        logins=logins, limits=limits)
    if settings.limits.imap_prerender_quiet > 0:
        ctx.prerender = Prerenderer(store, quiet=settings.limits.imap_prerender_quiet)
        ctx.prerender.start()
        reactor.addSystemEventTrigger("before", "shutdown", ctx.prerender.stop)  # before the store closes
    factory = IMAPFactory(ctx)
    ports = []
    if listeners.imap is not None:
        if proxy is None:
            ports.append(reactor.listenTCP(listeners.imap.port, factory, backlog=BACKLOG, interface=listeners.imap.address))
        else:
            ports.append(proxy(listeners.imap.port, factory, interface=listeners.imap.address, backlog=BACKLOG))
    if listeners.imaps is not None:
        if proxy is None:
            ports.append(reactor.listenSSL(listeners.imaps.port, factory, tls, backlog=BACKLOG, interface=listeners.imaps.address))
        else:
            ports.append(proxy(listeners.imaps.port, factory, interface=listeners.imaps.address, tls=tls, backlog=BACKLOG))
    return ports
