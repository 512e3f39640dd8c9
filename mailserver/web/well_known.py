"""``/.well-known/``: the RFC 8615 names other systems look up on our host. Several modules serve a
name here (MTA-STS policy, mail client autoconfiguration); this directory holds them under one
route, and anything else under it is our ordinary 404."""

from __future__ import annotations

from twisted.web import resource, server

from mailserver.web import mtasts
from mailserver.web.context import PortalContext
from mailserver.web.http import NotFound


class WellKnown(resource.Resource):
    subpaths = True  # mailserver/web/http.py Root: deeper paths are ours to resolve

    def __init__(self, not_found: NotFound) -> None:
        super().__init__()
        self.not_found = not_found

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        return self.not_found

    def render(self, request: server.Request) -> bytes:
        return self.not_found.render(request)


def page(ctx: PortalContext) -> WellKnown:
    directory = WellKnown(NotFound(ctx.render.not_found()))
    directory.putChild(b"mta-sts.txt", mtasts.Policy(ctx.settings))  # RFC 8461 3.2
    return directory
