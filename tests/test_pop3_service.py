"""start_pop3 wiring: which listeners open, with what TLS, sharing one maildrop lock table."""

from __future__ import annotations

import types

from config.settings import TLS, Listener, Listeners, Settings
from pop3.service import DEFAULT_AUTOLOGOUT, start_pop3


class FakeReactor:
    def __init__(self) -> None:
        self.tcp, self.ssl = [], []

    def listenTCP(self, port, factory, interface=""):
        self.tcp.append((interface, port, factory))
        return ("tcp", port)

    def listenSSL(self, port, factory, context, interface=""):
        self.ssl.append((interface, port, factory, context))
        return ("ssl", port)

    def getThreadPool(self):
        raise AssertionError("no thread work at start-up")


STORE = types.SimpleNamespace(locks="the store's locks")  # all start_pop3 takes from the store at start


def test_pop3_and_pop3s_listen_with_one_lock_table():
    settings = Settings(listeners=Listeners(pop3=Listener(port=1110), pop3s=Listener(address="::1", port=1995)),
                        tls=TLS(allow_plaintext_auth_on_loopback=False))
    reactor = FakeReactor()
    ports = start_pop3(reactor, settings, store=STORE, auth="auth", tls="tls-options")
    assert ports == [("tcp", 1110), ("ssl", 1995)]
    (_, _, plain), (address, _, secure, context) = reactor.tcp[0], reactor.ssl[0]
    assert address == "::1" and context == "tls-options"
    assert not plain.ctx.implicit_tls and secure.ctx.implicit_tls
    assert plain.ctx.tls == "tls-options"  # STLS on the plaintext port
    assert plain.ctx.locks is secure.ctx.locks
    assert plain.ctx.allow_plaintext_auth_on_loopback is False
    assert plain.ctx.autologout >= DEFAULT_AUTOLOGOUT


def test_no_pop3_listeners_configured_opens_nothing():
    reactor = FakeReactor()
    assert start_pop3(reactor, Settings(), store=STORE, auth="auth", tls="tls-options") == []
    assert reactor.tcp == reactor.ssl == []
