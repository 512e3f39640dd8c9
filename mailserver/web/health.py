"""``/healthz``: ``ok`` (200) once a store read succeeds, else 503 — for load balancers and the
agency's monitoring."""

from __future__ import annotations

from twisted.internet.threads import deferToThread
from twisted.web import server

from mailserver.web.context import PortalContext
from mailserver.web.http import TEXT, AsyncPage


class Health(AsyncPage):
    def __init__(self, ctx: PortalContext) -> None:
        super().__init__(ctx.render.server_error)
        self.store = ctx.store

    def render_GET(self, request: server.Request) -> int:
        d = deferToThread(self.store.accounts.list_domains)
        d.addCallbacks(lambda _domains: (200, TEXT, b"ok\n"), lambda f: (503, TEXT, b"store unavailable\n"))
        return self.answer(request, d)


def page(ctx: PortalContext) -> Health:
    return Health(ctx)
