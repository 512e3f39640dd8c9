"""``/reports``: the statistics report (R-OPS-2) for operators, as ``mailserver report stats
--format html`` makes it. Only from ``web.admin_from`` networks (404 to anyone else, as if absent)
and only to the accounts in ``web.operators``, by HTTP Basic over the portal's TLS, checked like
any login (the login guard counts, delays and blocks guessing). No cookie, no session.

``?quarter=2026Q4`` or ``?year=2026`` (default: the current quarter), ``&unit=CODE``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import unicodedata
from typing import Any

from twisted.internet import defer, task
from twisted.internet.threads import deferToThread
from twisted.web import server

from mailserver.policy.guard import is_trusted
from mailserver.reports import data, period, render, stats
from mailserver.web.context import PortalContext
from mailserver.web.http import HEADERS, HTML, Answer, AsyncPage, NotFound, client_host

_CHALLENGE = b'Basic realm="mailserver reports", charset="UTF-8"'


def basic_credentials(header: bytes | None) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic`` header (RFC 7617, UTF-8), else None."""
    if not header or not header[:6].lower() == b"basic ":
        return None
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (unicodedata.normalize("NFC", user), unicodedata.normalize("NFC", password)) if sep else None


def current_quarter(today: dt.date) -> str:
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


class Reports(AsyncPage):
    own_headers = {b"content-security-policy": HEADERS[b"content-security-policy"].replace(
        b"img-src 'self'", b"img-src 'self' data:")}  # the charts are data: SVG images

    def __init__(self, ctx: PortalContext) -> None:
        super().__init__(ctx.render.server_error)
        self.ctx = ctx
        self.operators = {a.lower() for a in ctx.settings.web.operators}
        self.not_found = NotFound(ctx.render.not_found())

    def render_GET(self, request: server.Request) -> bytes | int:
        client = client_host(request)
        if not is_trusted(client, self.ctx.settings.web.admin_from):
            return self.not_found.render(request)
        args = {k.decode("utf-8", "replace"): v[0].decode("utf-8", "replace") for k, v in request.args.items() if v}
        creds = basic_credentials(request.getHeader(b"authorization"))
        return self.answer(request, defer.ensureDeferred(self._report(request, client, creds, args)))

    def _unauthorised(self, request: server.Request) -> Answer:
        request.setHeader(b"www-authenticate", _CHALLENGE)
        return 401, HTML, self.ctx.render.message(
            "Cần đăng nhập", "Sign-in required", "err", "Trang này chỉ dành cho cán bộ vận hành hệ thống thư.",
            "This page is for the mail system's operators only.")

    async def _report(self, request: server.Request, client: str, creds: tuple[str, str] | None, args: dict) -> Answer:
        if creds is None or creds[0].strip().lower() not in self.operators:
            return self._unauthorised(request)
        user, password = creds

        async def verify() -> tuple[Any, str]:
            account = await deferToThread(self.ctx.auth.authenticate, user.strip(), password)
            return account, "" if account is not None else "credentials"

        if self.ctx.logins is None:
            account, _reason = await verify()
        else:
            attempt = await self.ctx.logins.attempt("web", client, user, verify, thread=deferToThread,
                                                    sleep=lambda s: task.deferLater(self.ctx.reactor, s, lambda: None))
            account = attempt.account
        if account is None:
            return self._unauthorised(request)
        try:
            if "year" in args:
                span = period.year(args["year"])
            else:
                span = period.quarter(args.get("quarter") or current_quarter(dt.date.today()))
        except ValueError as e:
            return 400, HTML, self.ctx.render.message("Yêu cầu không hợp lệ", "Bad request", "err",
                                                      "Kỳ báo cáo không đúng dạng (2026Q4 hoặc 2026).", str(e))
        unit = args.get("unit") or None
        try:
            body = await deferToThread(self._build, span, unit)
        except data.UnknownUnit as e:
            return 404, HTML, self.ctx.render.message("Không tìm thấy", "Not found", "err", "Không có đơn vị này.", str(e))
        return 200, HTML, body

    def _build(self, span: period.Period, unit: str | None) -> bytes:
        store = self.ctx.store
        boxes, label = data.mailboxes(store, unit)
        facts = data.facts(store, span.start, span.end, boxes)
        return render.stats_html(stats.compute(span, boxes, facts, label), self.ctx.settings.agency,
                                 standalone=False).encode("utf-8")


def page(ctx: PortalContext) -> Reports | None:
    return Reports(ctx) if ctx.settings.web.operators else None
