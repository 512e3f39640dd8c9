"""``/metrics``: Prometheus text for the IT centre's monitoring (Prometheus, or Zabbix's
Prometheus items): accounts by kind and state, usage, queue, search backlog, sessions, memory.
Only to ``web.metrics_from`` networks (loopback by default); 404 to anyone else, as if absent."""

from __future__ import annotations

from twisted.internet.threads import deferToThread
from twisted.web import server

from mailserver.policy.guard import is_trusted
from mailserver.web.context import PortalContext
from mailserver.web.http import AsyncPage, NotFound


class Metrics(AsyncPage):
    """Prometheus text format (Zabbix reads it too), from ``web.metrics_from`` networks only."""

    def __init__(self, ctx: PortalContext) -> None:
        super().__init__(ctx.render.server_error)
        self.allowed = ctx.settings.web.metrics_from
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
        d = deferToThread(self.store.usage.stats)
        d.addCallback(lambda stats: (200, b"text/plain; version=0.0.4; charset=utf-8",
                                     metrics_text(stats, sessions, uptime, _memory()).encode()))
        return self.answer(request, d)


def metrics_text(stats, sessions: dict[str, int], uptime: float, memory: dict[str, int]) -> str:
    """The exposition text: one HELP/TYPE pair per metric, labels sorted (stable for diffing)."""
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
    metric("sessions", "gauge", "Logged-in IMAP and POP3 sessions.",
           [(f'{{protocol="{p}"}}', sessions.get(p, 0)) for p in ("imap", "pop3")])
    if "VmRSS" in memory:
        metric("resident_memory_bytes", "gauge", "Resident memory of the server process.", [("", memory["VmRSS"])])
    if "RssAnon" in memory:  # the rest of RSS is mostly the mapped database file: page cache, reclaimable
        metric("anonymous_memory_bytes", "gauge", "Resident memory not backed by a file (the process's own).",
               [("", memory["RssAnon"])])
    return "\n".join(out) + "\n"


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
