"""The one composition root: builds the store, the authenticator and every service from Settings.

One process, one event loop (docs/architecture.md, "Threads"): an asyncio loop with
Twisted's asyncioreactor installed on it *before* anything imports ``twisted.internet.reactor``;
aiosmtpd serves SMTP through ``loop.create_server``; Twisted serves IMAP4 and POP3 on the same
loop; the reactor is started with ``startRunning`` inside the running loop so that
``deferToThread`` works.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import ssl
import signal
import sys
from pathlib import Path

from config.settings import Settings
from mailserver import tlspolicy
from mailserver.workers import Worker, check_workers, serve_workers
from storage.sql import SqlStore

log = logging.getLogger("mailserver")


class NotMigrated(RuntimeError):
    pass


def _ensure_dirs(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)


def migrate(settings: Settings) -> None:
    """Create the database or bring its schema to the newest revision (Alembic)."""
    from storage import migrate as _migrate  # Alembic: a fifth of a CLI command's start-up, needed here only

    _ensure_dirs(settings)
    _migrate.upgrade(settings.database.url)


def check_migrated(settings: Settings) -> None:
    from storage import migrate as _migrate

    current, head = _migrate.pending(settings.database.url)
    if current != head:
        raise NotMigrated(
            f"database schema is at {current or 'nothing'}, this version needs {head}: "
            "run `mailserver db upgrade` (or `mailserver init` for a new data directory)"
        )


def open_store(settings: Settings) -> SqlStore:
    _ensure_dirs(settings)
    return SqlStore(
        settings.database.url,
        blob_dir=settings.data_dir / "blobs",
        inline_blob_limit=settings.database.inline_blob_limit,
        max_batch=settings.database.max_batch,
        fold_diacritics=settings.search.fold_diacritics,
        mime_max_depth=settings.limits.mime_max_depth,
    )


server_ssl_context = tlspolicy.server_ssl_context  # R-SEC-1: tls.policy


def twisted_tls_options(settings: Settings):
    """The TLS context factory of IMAP, POP3 and the portal (at ``tls.policy``), reloadable on SIGHUP."""
    return ReloadableTLS(settings)


def _tls_interface(cls):
    from twisted.internet.interfaces import IOpenSSLContextFactory
    from zope.interface import implementer

    return implementer(IOpenSSLContextFactory)(cls)  # else Twisted warns (LegacyContextFactoryWarning)


@_tls_interface
class ReloadableTLS:
    """A Twisted context factory whose pair can be replaced. Twisted asks ``getContext()`` for every
    new TLS connection and STARTTLS; pyOpenSSL refuses to change a context once a connection used
    it, so ``reload()`` builds a new one: new connections get the new pair, open ones keep theirs."""

    def __init__(self, settings: Settings) -> None:
        self._options = tlspolicy.twisted_tls_options(settings)

    def getContext(self):  # noqa: N802 - Twisted's name
        return self._options.getContext()

    def reload(self, settings: Settings) -> None:
        options = tlspolicy.twisted_tls_options(settings)
        options.getContext()  # fails here, not at the next handshake, on a bad pair
        self._options = options


def _listening_lines(settings: Settings) -> list[str]:
    lines = []
    for name, listener in settings.listeners:
        if listener is not None and name == "web":
            scheme = "https" if settings.web.tls else "http"
            lines.append(f"  {name:<12} {scheme}://{listener.address}:{listener.port}/password")
        elif listener is not None:
            lines.append(f"  {name:<12} {listener.address}:{listener.port}")
    return lines


class _Running:
    """What ``serve`` started, so that shutdown can close it in order."""

    def __init__(self) -> None:
        self.servers: list = []
        self.ports: list = []
        self.store: SqlStore | None = None
        self.outbound = None  # smtp.outbound.OutboundService: the delivery worker of the queue
        self.quota = None
        self.retention = None
        self.lifecycle = None
        self.daily: list = []  # more DailyJobs (ldap sync, backups): cancelled at shutdown
        self.guard = None
        self.announcements = None  # LoopingCall delivering scheduled announcements
        self.ssl_context: ssl.SSLContext | None = None  # SMTP's, reloaded on SIGHUP
        self.tls: ReloadableTLS | None = None  # of IMAP, POP3 and the portal, reloaded on SIGHUP
        self.error: BaseException | None = None

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for port in self.ports:
            await asyncio.ensure_future(_as_future(port.stopListening()))
        for server in self.servers:
            await server.wait_closed()
        if self.guard is not None:
            self.guard.stop()
        if self.announcements is not None and self.announcements.running:
            self.announcements.stop()
        if self.retention is not None:
            self.retention.cancel()
        if self.lifecycle is not None:
            self.lifecycle.cancel()
        for job in self.daily:
            job.cancel()
        if self.outbound is not None:
            await self.outbound.stop()
        if self.quota is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.quota.close)
        if self.store is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.store.close)


def _as_future(result):
    from twisted.internet.defer import Deferred

    if isinstance(result, Deferred):
        return result.asFuture(asyncio.get_running_loop())
    future = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return future


class _AdoptingReactor:
    """The reactor, except that ``listenTCP``/``listenSSL`` on an address the parent of several
    workers has bound adopt that socket instead of binding again (mailserver/workers.py). The IMAP,
    POP3 and web services listen through it unchanged."""

    def __init__(self, reactor, sockets: dict) -> None:
        self._reactor = reactor
        self._sockets = sockets

    def __getattr__(self, name: str):
        return getattr(self._reactor, name)

    def listenTCP(self, port: int, factory, backlog: int = 50, interface: str = ""):
        sock = self._sockets.get((interface, port))
        if sock is None:
            return self._reactor.listenTCP(port, factory, backlog=backlog, interface=interface)
        return self._reactor.adoptStreamPort(sock.fileno(), sock.family, factory)

    def listenSSL(self, port: int, factory, contextFactory, backlog: int = 50, interface: str = ""):
        if (interface, port) not in self._sockets:
            return self._reactor.listenSSL(port, factory, contextFactory, backlog=backlog, interface=interface)
        from twisted.protocols.tls import TLSMemoryBIOFactory

        return self.listenTCP(port, TLSMemoryBIOFactory(contextFactory, False, factory), backlog, interface)


async def _start(settings: Settings, running: _Running, worker: Worker | None = None) -> None:
    from twisted.internet import reactor as real_reactor

    from pop3.service import start_pop3
    from mailserver.sessions import SessionGuard
    from imap.service import start_imap
    from mailserver.accounts.auth import Authenticator
    from smtp.outbound import start_outbound
    from smtp.service import start_smtp

    store = running.store = open_store(settings)
    auth = Authenticator(store, settings.passwords, ldap=settings.ldap)
    loop = asyncio.get_running_loop()
    for domain in settings.domains:
        await loop.run_in_executor(None, store.accounts.add_domain, domain)
    from mailserver.mailboxes.quota import start_quota
    from mailserver.mailboxes.retention import start_retention

    running.quota = start_quota(settings, store)  # threshold warnings (R-QUOTA-1)
    sockets = worker.sockets if worker is not None else {}
    reactor = _AdoptingReactor(real_reactor, sockets) if sockets else real_reactor
    if worker is None or worker.runs_daily_jobs:
        from mailserver.accounts.lifecycle import start_lifecycle

        running.retention = start_retention(loop, settings, store)  # nightly clean-up (R-QUOTA-2)
        running.lifecycle = start_lifecycle(loop, settings, store)  # daily deadlines (R-LIFE-*, lifecycle.run_at)
        from mailserver.directory_sync.sync import start_sync

        running.daily.append(start_sync(loop, settings, store))  # directory (R-PROTO-3, ldap.sync_at)
        from mailserver.maintenance.scheduled import start_backups

        running.daily.append(start_backups(loop, settings))  # verified, rotated backups (R-SEC-4, backup.schedule)

    organisation = store.org
    # login guessing (R-SEC-1): one guard and one connection count for every protocol
    from functools import partial

    from mailserver.accounts.guard import ConnectionLimits, LoginGuard
    from mailserver.accounts.rates import SendingRates
    from mailserver.mailboxes.classified import ClassifiedReports
    from mailserver.listen import listen

    logins = LoginGuard(store, settings.guard)
    limits = ConnectionLimits(settings.guard)
    proxy = partial(listen, reactor, settings.proxy) if settings.proxy.trusted else None
    replaces = worker.replaces if worker is not None else ()
    running.outbound = await start_outbound(loop, settings, store, replaces)  # queue worker, DKIM
    running.ssl_context = server_ssl_context(settings)
    running.servers = await start_smtp(
        settings, store, auth, running.ssl_context,
        groups=organisation, quota=running.quota, org=organisation, outbound=running.outbound, sockets=sockets,
        logins=logins, limits=limits, rates=SendingRates(store, settings),
        classified=ClassifiedReports(store, settings),  # R-SEC-3: audit and notices of the guard
    )  # fmt: skip
    from managesieve.service import start_managesieve

    running.servers += await start_managesieve(settings, store, auth, server_ssl_context(settings), logins=logins, limits=limits, sockets=sockets)  # RFC 5804
    tls = running.tls = twisted_tls_options(settings)
    # revoked, locked, deleted or password reset since login: the session is ended (mailserver/sessions.py)
    guard = running.guard = SessionGuard(real_reactor, store, settings.limits.session_recheck,
                                         rights_for=organisation.rights_for)
    guard.start()
    running.ports = list(start_imap(reactor, settings, store, auth, tls, quota=running.quota, org=organisation, guard=guard,
                                    logins=logins, limits=limits, proxy=proxy))
    running.ports += list(start_pop3(reactor, settings, store, auth, tls, guard=guard, logins=logins, limits=limits, proxy=proxy))
    from mailserver.announcements.schedule import start_announcements
    from mailserver.web.portal import start_web

    running.ports += start_web(reactor, settings, store, auth, organisation, tls, guard, logins=logins)  # password change, health (R-PASS-1)
    running.announcements = start_announcements(real_reactor, store, settings.reports.keep_years)  # R-OPS-3: announce --at
    who = f" (worker {worker.index}, pid {os.getpid()})" if worker is not None else ""
    print(f"mailserver {settings.hostname} serving {', '.join(settings.domains)}{who}", flush=True)
    print("\n".join(_listening_lines(settings)), flush=True)
    print(f"  data         {settings.data_dir}", flush=True)
    settle_gc()


def serve_many(settings: Settings, count: int) -> int:
    """``serve --workers N``: N processes under a supervising parent (mailserver/workers.py);
    one process as ``serve`` when N is 1. Returns the exit status."""
    check_workers(settings, count)
    if count == 1:
        serve(settings)
        return 0
    metrics_dir, parent = _multiprocess_metrics(), os.getpid()
    try:
        _configure_logging(settings)
        check_migrated(settings)
        return serve_workers(settings, count, lambda worker: serve(settings, worker))
    finally:
        if os.getpid() == parent:  # not in a worker leaving
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _multiprocess_metrics() -> str:
    """/metrics over several workers (prometheus-client's multiprocess mode): every worker's counts
    go to files in a fresh directory, which any worker's scrape sums. Must happen before
    prometheus-client is imported: it picks its value class at import."""
    import tempfile

    from mailserver.policy.metrics_env import MULTIPROC_ENV

    if "prometheus_client" in sys.modules:  # a programming error: the counts would stay per process
        raise RuntimeError("prometheus_client imported before serve --workers set up multiprocess metrics")
    directory = tempfile.mkdtemp(prefix="mailserver-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    return directory


def _configure_logging(settings: Settings) -> None:
    from mailserver.logsetup import configure

    configure(settings.logging)


def reload_on_hup(settings: Settings, running: _Running) -> None:
    """SIGHUP: the log file reopened (logrotate) and the TLS certificate and key read again. New
    connections and STARTTLS get the new pair; open sessions keep theirs (nothing is dropped).
    A pair that does not load (a half-copied renewal) is refused with a log line; the old stays."""
    from mailserver.logsetup import reopen

    reopen()
    cert, key = str(settings.tls.cert), str(settings.tls.key)
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)  # the pair is good?
        if running.ssl_context is not None:
            running.ssl_context.load_cert_chain(cert, key)  # SMTP (asyncio)
        if running.tls is not None:
            running.tls.reload(settings)  # IMAP, POP3, portal (Twisted)
    except Exception as exc:  # noqa: BLE001 - a bad pair (OSError, SSLError, OpenSSL.SSL.Error): keep the old one
        log.error("SIGHUP: TLS certificate %s / key %s not reloaded: %s", cert, key, exc)
        return
    log.info("SIGHUP: log reopened, TLS certificate %s reloaded", cert)


def settle_gc() -> None:
    """Leave the start-up objects out of Python's cyclic collector from now on.

    Why: a full (generation 2) collection walks every tracked object, and after start-up ~130,000
    of them are modules, classes and library state that live as long as the process. Each such
    pass held the GIL for ~70 ms, a stall in whatever ran then: a group delivery's commit, or
    telling 1,000 IDLE clients of it (bench/fanout.py). ``gc.freeze`` moves them to a permanent
    generation; what sessions and messages allocate is still collected as before."""
    gc.collect()
    gc.freeze()


def serve(settings: Settings, worker: Worker | None = None) -> None:
    """Run every configured listener in this process until SIGINT/SIGTERM (``worker``: one of
    several processes, with the listening sockets its parent bound; mailserver/workers.py).

    The reactor owns the loop (``reactor.run`` = ``loop.run_forever``) so that Twisted's shutdown
    sequence runs: our "before shutdown" trigger closes the listeners and the store, then Twisted
    stops its thread pool and the loop. Raises the start-up error, if any.
    """
    _configure_logging(settings)
    if worker is None:
        check_migrated(settings)  # else the parent did
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    from twisted.internet import asyncioreactor

    asyncioreactor.install(eventloop=loop)
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    running = _Running()

    def started(task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is not None:
            running.error = task.exception() if not task.cancelled() else RuntimeError("start-up cancelled")
            reactor.stop()

    def before_shutdown():
        log.info("shutting down")
        return Deferred.fromFuture(asyncio.ensure_future(running.close()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, reactor.stop)
    loop.add_signal_handler(signal.SIGHUP, reload_on_hup, settings, running)
    reactor.callWhenRunning(lambda: loop.create_task(_start(settings, running, worker)).add_done_callback(started))
    try:
        reactor.run(installSignalHandlers=False)
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    if running.error is not None:
        raise running.error
