"""POP3 listeners: ``listeners.pop3`` (plaintext with STLS) and ``listeners.pop3s`` (implicit TLS).

Called once by ``mailserver/app.py`` after the asyncio reactor is running. Both listeners share
one maildrop lock table, so a session on 995 and one on 110 for the same account exclude each
other (RFC 1939 exclusive access); the store's locks extend it to every process on the store.
"""

from __future__ import annotations

from twisted.internet import protocol, threads

from config.settings import Settings
from pop3.maildrop import MaildropLocks
from pop3.server import POP3Server, Pop3Context
from storage.api import Store

#: RFC 1939 section 3: an inactivity autologout timer MUST be at least 10 minutes.
DEFAULT_AUTOLOGOUT = 10 * 60


class Pop3Factory(protocol.ServerFactory):
    noisy = False  # connections are logged by the sessions, not once more per connect

    def __init__(self, ctx: Pop3Context) -> None:
        self.ctx = ctx

    def buildProtocol(self, addr) -> POP3Server:
        session = POP3Server(self.ctx)
        session.factory = self
        return session


def autologout_seconds(settings: Settings) -> int:
    """``limits.pop3_autologout`` (at least RFC 1939's ten minutes, enforced by the settings)."""
    return settings.limits.pop3_autologout


def start_pop3(reactor, settings: Settings, store: Store, auth, tls, *, guard=None, logins=None, limits=None,
               proxy=None) -> list:
    """Listen on the configured POP3 ports; returns their ``IListeningPort``s (app.py stops them).

    ``tls`` is the ``CertificateOptions`` app.py built once: STLS on pop3, the handshake on pop3s.
    ``logins``: the login guard; ``limits``: connections per client address; ``proxy(port,
    factory, interface=, tls=)`` listens instead of the reactor, reading the PROXY header of
    connections from the configured proxies (mailserver/listen.py).
    """

    def run_in_thread(f, *args, **kwargs):
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), f, *args, **kwargs)

    shared = dict(
        store=store,
        auth=auth,
        locks=MaildropLocks(store.locks),
        tls=tls,
        allow_plaintext_auth_on_loopback=settings.tls.allow_plaintext_auth_on_loopback,
        autologout=autologout_seconds(settings),
        run_in_thread=run_in_thread,
        guard=guard,
        logins=logins,
        limits=limits,
        reactor=reactor,
        passwords=settings.passwords,
        password_url=settings.password_url(),
    )
    ports = []
    try:
        plain = settings.listeners.pop3
        if plain is not None:
            factory = Pop3Factory(Pop3Context(implicit_tls=False, **shared))
            if proxy is None:
                ports.append(reactor.listenTCP(plain.port, factory, interface=plain.address))
            else:
                ports.append(proxy(plain.port, factory, interface=plain.address))
        secure = settings.listeners.pop3s
        if secure is not None:
            factory = Pop3Factory(Pop3Context(implicit_tls=True, **shared))
            if proxy is None:
                ports.append(reactor.listenSSL(secure.port, factory, tls, interface=secure.address))
            else:
                ports.append(proxy(secure.port, factory, interface=secure.address, tls=tls))
    except Exception:
        for port in ports:
            port.stopListening()
        raise
    return ports
