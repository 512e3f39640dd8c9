"""``/danh-ba``: the e-mail directory (R-DIR-1), live, in the portal's layout; served only with
``web.publish_directory`` (it lists every active address)."""

from __future__ import annotations

import datetime as dt

from twisted.internet.threads import deferToThread
from twisted.web import server

from mailserver.accounts import directory
from mailserver.web.context import PortalContext
from mailserver.web.http import HTML, Answer, AsyncPage
from storage.api import AccountKind

#: sections in order, with their headings (Vietnamese, English)
SECTIONS = ((AccountKind.UNIT, "Hộp thư đơn vị", "Unit mailboxes"), (AccountKind.GROUP, "Hộp thư nhóm", "Group mailboxes"),
            (AccountKind.PERSONAL, "Hộp thư cá nhân", "Personal mailboxes"))


class Directory(AsyncPage):
    def __init__(self, ctx: PortalContext) -> None:
        super().__init__(ctx.render.server_error)
        self.ctx = ctx

    def render_GET(self, request: server.Request) -> int:
        return self.answer(request, deferToThread(self._build))

    def _build(self) -> Answer:
        items = directory.entries(self.ctx.org.directory_rows())
        sections = [(vi, en, [e for e in items if e.kind is kind]) for kind, vi, en in SECTIONS]
        body = self.ctx.render.page("directory.html", title_vi=self.ctx.settings.web.directory_title,
                                    title_en="E-mail directory", count=len(items),
                                    today=dt.date.today().strftime("%d/%m/%Y"),
                                    sections=[s for s in sections if s[2]])
        return 200, HTML, body


def page(ctx: PortalContext) -> Directory | None:
    if not ctx.settings.web.publish_directory or ctx.org is None:
        return None
    return Directory(ctx)
