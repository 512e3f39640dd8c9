"""Entry point called by ``mailserver/app.py``: start the SMTP listeners on the running loop.

- ``listeners.smtp``: MX for our domains, STARTTLS offered, no AUTH, never relays (R-SEC-1).
- ``listeners.submission``: STARTTLS + AUTH required before MAIL (RFC 6409).
- ``listeners.submissions``: implicit TLS + AUTH required (RFC 8314).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping

from config.settings import Listener, Settings
from smtp.classified import Guard
from smtp.data import spool_factory
from smtp.filters import Filters
from smtp.handler import InboundHandler
from smtp.bounce import Outbound
from smtp.outbound.dns import Resolver
from smtp.pipeline import Groups, Org
from smtp.quota import QuotaPolicy
from smtp.protocol import MailSMTP
from smtp.submission import SubmissionHandler
from storage.api import Store

log = logging.getLogger("smtp.service")

#: Worker threads for SMTP store calls. Most of them wait on the store's group commit, so this
#: bounds how many messages one commit can take, not CPU use.
STORE_THREADS = 64


def protocol_factory(settings: Settings, handler: InboundHandler, **kwargs: Any) -> Callable[[], MailSMTP]:
    """A factory of sessions sharing one handler (handlers keep no per-session state)."""
    spool = spool_factory(settings.data_dir / "spool", settings.limits.smtp_spool_threshold)
    loop = asyncio.get_running_loop()

    guard, proxy = settings.guard, settings.proxy
    kwargs.setdefault("proxy_from", tuple(proxy.trusted))
    kwargs.setdefault("proxy_timeout", proxy.timeout)
    kwargs.setdefault("max_commands", guard.smtp_commands_per_session)
    kwargs.setdefault("max_bad_commands", guard.smtp_bad_commands_per_session)

    def make() -> MailSMTP:
        return MailSMTP(
            handler,
            spool_factory=spool,
            max_message_size=handler.max_size,  # EHLO SIZE and the DATA cap
            hostname=settings.hostname,  # never the blocking socket.getfqdn()
            ident="ESMTP",
            timeout=settings.limits.smtp_timeout,
            loop=loop,
            **kwargs,
        )

    return make


async def _listen(name: str, listener: Listener, factory: Callable[[], MailSMTP], sockets: Mapping | None,
                  **kwargs: Any) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    sock = (sockets or {}).get((listener.address, listener.port))
    if sock is not None:  # bound by the parent of several worker processes, shared by all
        server = await loop.create_server(factory, sock=sock, **kwargs)
    else:
        server = await loop.create_server(factory, listener.address, listener.port, reuse_address=True, **kwargs)
    for sock in server.sockets:
        log.info("%s listening on %s", name, sock.getsockname()[:2])
    return server


async def start_smtp(
    settings: Settings,
    store: Store,
    auth: Any,
    ssl_context: ssl.SSLContext | None,
    *,
    groups: Groups | None = None,
    quota: QuotaPolicy | None = None,
    org: Org | None = None,
    outbound: Outbound | None = None,
    resolver: Resolver | None = None,
    logins: Any = None,
    limits: Any = None,
    rates: Any = None,
    sockets: Mapping | None = None,
    classified: Any = None,
) -> list[asyncio.Server]:
    """Start the configured SMTP listeners. What the composition root injects (smtp/ imports no
    mailserver.* nor storage internals; each is typed by a Protocol here):

    - ``auth``: ``mailserver.accounts.auth.Authenticator`` (submission);
    - ``groups``: group fan-out at RCPT (R-BOX-4), ``storage.api.Organisation`` fits;
    - ``quota``: ``mailserver.mailboxes.quota.QuotaService`` (R-QUOTA-1, smtp/quota.py); None: no
      quota checks, SIZE is ``limits.max_message_size``;
    - ``org``: send-as and SASL authorization identities, ``Organisation`` fits; None:
      users send only as their own addresses;
    - ``outbound``: the outbound queue (``smtp.outbound.OutboundService``); None: submission
      refuses remote recipients (550 5.7.1) and DSNs to remote senders are logged, not sent;
    - ``resolver``: DNS for SPF/DKIM of inbound mail (Authentication-Results); default: built
      from ``settings.dns``;
    - ``logins``: the login guard of submission AUTH (``mailserver.accounts.guard.LoginGuard``);
      None: failures are only delayed by ``AUTH_FAILURE_DELAY``;
    - ``limits``: connections at once per client address (``ConnectionLimits``); None: no limit;
    - ``rates``: messages and recipients per hour of a submitting account
      (``mailserver.accounts.rates.SendingRates``); None: no hourly limits;
    - ``classified``: audit and notices of the classified-document guard (``smtp.classified.Reports``,
      ``mailserver.mailboxes.classified.ClassifiedReports`` fits); the guard itself runs when
      ``classified.enabled`` (R-SEC-3), on submission only.

    Connections from ``proxy.trusted`` begin with a PROXY header (25, 587 and 465: there the
    header comes before TLS, as HAProxy's ``send-proxy`` sends it). ``sockets``: listening sockets already bound, by (address,
    port) (``serve --workers``)."""
    # aiosmtpd logs every command line at INFO ("mail.log"); our handlers log one line per
    # transaction decision with its id, which is what operators read.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    loop = asyncio.get_running_loop()
    spool_dir = settings.data_dir / "spool"
    await loop.run_in_executor(None, lambda: spool_dir.mkdir(parents=True, exist_ok=True))
    servers: list[asyncio.Server] = []
    ls = settings.listeners
    pool = ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="smtp-store")
    max_size = settings.limits.max_message_size
    if quota is not None:
        max_size = min(max_size, quota.smtp_size())
    common = dict(executor=pool, groups=groups, quota=quota, org=org, outbound=outbound, max_size=max_size)
    filters = Filters.from_settings(settings)  # spamd, clamd, milters, DMARC (submission: clamd, spamd if asked)
    if ls.smtp is not None:
        resolver = resolver if resolver is not None else Resolver.from_settings(settings.dns)
        mx = protocol_factory(settings, InboundHandler(settings, store, resolver=resolver, filters=filters, **common),
                              tls_context=ssl_context, service="smtp", limits=limits)  # fmt: skip
        servers.append(await _listen("smtp", ls.smtp, mx, sockets))
    if (ls.submission or ls.submissions) and auth is None:
        raise ValueError("submission listeners need an authenticator")
    loopback = settings.tls.allow_plaintext_auth_on_loopback
    guard = None
    if ls.submission is not None or ls.submissions is not None:
        guard = Guard.from_settings(settings.classified, classified)
        if guard is not None:  # the extraction processes start now (in the background), not at the first message
            guard.warming = asyncio.ensure_future(guard.scanner.warm())
    common["classified"] = guard
    common["filters"] = filters
    if ls.submission is not None:
        sub = protocol_factory(
            settings, SubmissionHandler(settings, store, auth, logins=logins, rates=rates, **common),
            tls_context=ssl_context, auth_required=True, plaintext_auth_on_loopback=loopback,
            service="submission", limits=limits,
        )  # fmt: skip
        servers.append(await _listen("submission", ls.submission, sub, sockets))
    if ls.submissions is not None:
        if ssl_context is None:
            raise ValueError("listeners.submissions needs TLS")
        # behind a PROXY-speaking load balancer the listener is plain and TLS starts after the
        # header (smtp/late_tls.py); otherwise TLS from the first byte, by the listener
        behind_proxy = bool(settings.proxy.trusted)
        subs = protocol_factory(
            settings, SubmissionHandler(settings, store, auth, logins=logins, rates=rates, **common),
            auth_required=True, implicit_tls=True, service="submissions", limits=limits,
            **({"late_tls": ssl_context} if behind_proxy else {"proxy_from": ()}),
        )  # fmt: skip
        servers.append(await _listen("submissions", ls.submissions, subs, sockets,
                                     **({} if behind_proxy else {"ssl": ssl_context})))
    return servers
