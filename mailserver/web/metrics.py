"""``/metrics``: Prometheus text for the IT centre's monitoring (Prometheus, Zabbix's Prometheus
items), only to ``web.metrics_from`` networks (404 to anyone else).

Two parts. The store's figures, read at each scrape (accounts by kind and state, usage, queue,
index backlog), this process's sessions and memory, and the TLS certificate's expiry (read from
``tls.cert`` at each scrape, so a renewed certificate shows at once). Then the event counters and
latency histograms of mailserver/policy/metrics.py (messages received, delivered, refused by
reason, bounces, logins by protocol and result, filter verdicts, queue attempts, SMTP DATA and
IMAP FETCH/SEARCH latency), summed over every worker under ``serve --workers`` (multiprocess
mode: each worker writes its counts to files that any worker's scrape reads).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from pathlib import Path
from typing import Any

from twisted.internet.threads import deferToThread
from twisted.web import server

from mailserver.policy.guard import is_trusted
from mailserver.policy.metrics_env import MULTIPROC_ENV
from mailserver.web.context import PortalContext
from mailserver.web.http import AsyncPage, NotFound

log = logging.getLogger(__name__)
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class Metrics(AsyncPage):
    """Prometheus text format (Zabbix reads it too), from ``web.metrics_from`` networks only."""

    def __init__(self, ctx: PortalContext) -> None:
        super().__init__(lambda: b"# the store did not answer\nmailserver_up 0\n")
        self.allowed = ctx.settings.web.metrics_from
        self.cert = ctx.settings.tls.cert
        self.store = ctx.store
        self.guard = ctx.guard
        self.reactor = ctx.reactor
        self.started = ctx.reactor.seconds()
        self.not_found = NotFound(ctx.render.not_found())

    def render_GET(self, request: server.Request) -> bytes | int:
        if not is_trusted(getattr(request.getClientAddress(), "host", ""), self.allowed):
            return self.not_found.render(request)
        sessions = self.guard.count_by_protocol() if self.guard is not None else {}
        uptime = self.reactor.seconds() - self.started

        def build() -> tuple[int, bytes, bytes]:
            text = metrics_text(self.store.usage.stats(), sessions, uptime, _memory(), _cert_expiry(self.cert))
            return 200, CONTENT_TYPE, text.encode() + registry_text()

        return self.answer(request, deferToThread(build))


def registry_text() -> bytes:
    """The counters and histograms in exposition format: this process's, or every worker's."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def metrics_text(stats, sessions: dict[str, int], uptime: float, memory: dict[str, int],
                 cert_expiry: float | None = None) -> str:
    """The store's part: one HELP/TYPE pair per metric, labels sorted (stable for diffing)."""
    out: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP mailserver_{name} {help_text}")
        out.append(f"# TYPE mailserver_{name} {kind}")
        out.extend(f"mailserver_{name}{labels} {value if isinstance(value, int) else repr(float(value))}"
                   for labels, value in samples)

    metric("up", "gauge", "1 while the server answers.", [("", 1)])
    metric("uptime_seconds", "gauge", "Seconds since the server started.", [("", round(uptime, 1))])
    metric("accounts", "gauge", "Accounts by kind and state.",
           [(f'{{kind="{k}",state="{s}"}}', n) for (k, s), n in sorted(stats.accounts.items())])
    metric("mailbox_used_bytes", "gauge", "Quota usage of every mailbox together.", [("", stats.used_bytes)])
    metric("messages", "gauge", "Messages in every mailbox together.", [("", stats.messages)])
    metric("stored_bodies", "gauge", "Distinct message bodies stored (single-instance).", [("", stats.stored_bodies)])
    metric("outbound_recipients", "gauge", "Outbound queue recipients by state.",
           [(f'{{state="{s}"}}', n) for s, n in sorted(stats.outbound.items())])
    metric("search_index_backlog", "gauge", "Bodies the search index has not reached yet.", [("", stats.index_backlog)])
    metric("sessions", "gauge", "Logged-in IMAP and POP3 sessions (of the process that answered).",
           [(f'{{protocol="{p}"}}', sessions.get(p, 0)) for p in ("imap", "pop3")])
    if cert_expiry is not None:
        metric("tls_certificate_expiry_timestamp_seconds", "gauge",
               "When the TLS certificate (tls.cert) expires, Unix time.", [("", cert_expiry)])
    if "VmRSS" in memory:
        metric("resident_memory_bytes", "gauge", "Resident memory of the server process.", [("", memory["VmRSS"])])
    if "RssAnon" in memory:  # the rest of RSS is mostly the mapped database file: page cache, reclaimable
        metric("anonymous_memory_bytes", "gauge", "Resident memory not backed by a file (the process's own).",
               [("", memory["RssAnon"])])
    return "\n".join(out) + "\n"


def _cert_expiry(path: Path) -> float | None:
    """notAfter of the first certificate in ``path`` (Unix time); None if unreadable."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError):
        return None
    return cert.not_valid_after_utc.replace(tzinfo=_dt.UTC).timestamp()


def _memory() -> dict[str, int]:
    """VmRSS and RssAnon of this process in bytes (Linux; empty elsewhere)."""
    found: dict[str, int] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "RssAnon"):
                    found[name] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return found


def page(ctx: PortalContext) -> Metrics:
    return Metrics(ctx)
