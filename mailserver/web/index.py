"""``/``: links to the pages that have a ``nav`` entry in the route table."""

from __future__ import annotations

from twisted.web import resource, server

from mailserver.web.context import PortalContext
from mailserver.web.http import prepare


class Index(resource.Resource):
    isLeaf = True

    def __init__(self, ctx: PortalContext) -> None:
        super().__init__()
        self.render_page = ctx.render

    def render_GET(self, request: server.Request) -> bytes:
        prepare(request)
        return self.render_page.page("index.html", title_vi="Hộp thư điện tử", title_en="Mail")


def page(ctx: PortalContext) -> Index:
    return Index(ctx)
