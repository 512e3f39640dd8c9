"""``/vacation``: the out-of-office reply set on the portal (RFC 5230), for users whose mail
program has no filter editor. The user proves who they are with the password, as on
``/password`` (same authenticator, login guard and refusal delay). The page writes one Sieve
script, ``VACATION_SCRIPT``, and makes it the active one (turning the reply off deactivates it);
a filter the user had active from a mail program is replaced, and the page says so. Delivery
then runs it like any script (smtp/sieve_delivery.py): one reply per sender per N days, never to
lists, bulk or automatic mail.
"""

from __future__ import annotations

import datetime as _dt
import logging
import unicodedata
from typing import Any

from twisted.internet import defer, task
from twisted.internet.threads import deferToThread
from twisted.web import server

from mailserver.web.context import PortalContext
from mailserver.web.http import HTML, Answer, AsyncPage, client_host, prepare
from mailserver.web.password import FAILURE_DELAY
from sieve.script import compile_script

log = logging.getLogger(__name__)

VACATION_SCRIPT = "nghi-phep"  # the script this page owns

_DEFAULT_SUBJECT = "Trả lời tự động: vắng mặt / Out of office"


def _sieve_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def vacation_script(subject: str, reason: str, days: int, until: _dt.date | None) -> str:
    """The Sieve text of the reply (pure; tested with the interpreter)."""
    action = f"vacation :days {days} :subject {_sieve_string(subject)} {_sieve_string(reason)};"
    if until is None:
        return f'require ["vacation"];\r\n# {VACATION_SCRIPT}: set on the portal\r\n{action}\r\n'
    return (f'require ["vacation","date","relational"];\r\n# {VACATION_SCRIPT}: set on the portal\r\n'
            f'if currentdate :value "le" "date" "{until.isoformat()}" {{\r\n  {action}\r\n}}\r\n')


#: a note on the page: (kind "", "ok" or "err", Vietnamese, English)
Note = tuple[str, str, str]
TITLE = {"title_vi": "Trả lời tự động", "title_en": "Out-of-office reply"}


class VacationPage(AsyncPage):
    def __init__(self, ctx: PortalContext) -> None:
        super().__init__(ctx.render.server_error)
        self.render_page = ctx.render
        self.settings, self.store, self.auth, self.reactor, self.logins = (
            ctx.settings, ctx.store, ctx.auth, ctx.reactor, ctx.logins)

    def _page(self, fields: dict[str, str] | None = None, notes: list[Note] = (), show_form: bool = True) -> bytes:
        f = {"address": "", "enabled": "on", "subject": _DEFAULT_SUBJECT, "reason": "", "until": "", "days": "3",
             **(fields or {})}
        return self.render_page.page("vacation.html", **TITLE, f=f, notes=list(notes), show_form=show_form,
                                     min_days=self.settings.sieve.vacation_min_days,
                                     max_days=self.settings.sieve.vacation_max_days)

    def render_GET(self, request: server.Request) -> bytes:
        prepare(request)
        return self._page()

    def render_POST(self, request: server.Request) -> int:
        form = {k.decode("utf-8", "replace"): v[0].decode("utf-8", "replace") for k, v in request.args.items() if v}
        names = ("address", "password", "enabled", "subject", "reason", "until", "days")
        fields = {n: unicodedata.normalize("NFC", form.get(n, "")) for n in names}
        return self.answer(request, defer.ensureDeferred(self._save(client_host(request), fields)))

    def _problems(self, f: dict[str, str]) -> tuple[list[tuple[str, str]], int, _dt.date | None]:
        problems, days, until = [], 3, None
        sieve = self.settings.sieve
        try:
            days = int(f["days"] or "3")
            if not sieve.vacation_min_days <= days <= sieve.vacation_max_days:
                raise ValueError
        except ValueError:
            problems.append((f"Số ngày phải từ {sieve.vacation_min_days} đến {sieve.vacation_max_days}.",
                             f"Days must be from {sieve.vacation_min_days} to {sieve.vacation_max_days}."))
        if f["until"]:
            try:
                until = _dt.date.fromisoformat(f["until"])
            except ValueError:
                problems.append(("Ngày không hợp lệ (năm-tháng-ngày).", "Invalid date (year-month-day)."))
        if f["enabled"] != "off" and not f["reason"].strip():
            problems.append(("Hãy nhập nội dung thư trả lời.", "Please write the reply."))
        return problems, days, until

    async def _save(self, client: str, f: dict[str, str]) -> Answer:
        html_type = HTML
        started = self.reactor.seconds()
        shown = {k: v for k, v in f.items() if k != "password"}
        problems, days, until = self._problems(f)
        if problems:
            return 400, html_type, self._page(shown, [("err", vi, en) for vi, en in problems])
        address = f["address"].strip()

        async def verify() -> tuple[Any, str]:
            account = await deferToThread(self.auth.authenticate, address, f["password"]) if "@" in address else None
            return account, "" if account is not None else "credentials"

        if self.logins is None:
            account, _why = await verify()
        else:
            attempt = await self.logins.attempt("web", client, address, verify, thread=deferToThread,
                                                sleep=lambda s: task.deferLater(self.reactor, s, lambda: None))  # fmt: skip
            if attempt.refused:
                return 429, html_type, self.render_page.message(
                    "Quá nhiều lần thử", "Too many attempts", "err", "Đã nhập sai quá nhiều lần; xin thử lại sau ít phút.",
                    "Too many wrong attempts; try again in a few minutes.")
            account = attempt.account
        if account is None:
            await task.deferLater(self.reactor, max(0.0, started + FAILURE_DELAY - self.reactor.seconds()), lambda: None)
            return 403, html_type, self._page(shown, [("err", "Địa chỉ hoặc mật khẩu không đúng.",
                                                        "Wrong address or password.")])
        notes = await deferToThread(self._apply, account, f, days, until)
        return 200, html_type, self._page(notes=notes, show_form=False)

    def _apply(self, account: Any, f: dict[str, str], days: int, until: _dt.date | None) -> list[Note]:
        """In a thread: write and activate (or deactivate) the script; the notes to show."""
        sieve = self.store.sieve
        active = [s.name for s in sieve.list_scripts(account.id) if s.active]
        if f["enabled"] == "off":
            if VACATION_SCRIPT in active:
                sieve.set_active(account.id, None)
            log.info("web: vacation reply off for %s", account.address)
            return [("ok", "Đã tắt trả lời tự động.", "The automatic reply is off.")]
        text = vacation_script(f["subject"].strip() or _DEFAULT_SUBJECT, f["reason"].replace("\r\n", "\n").replace("\n", "\r\n"), days, until)
        compile_script(text)  # what delivery will run; a failure here is a bug (500 page, logged)
        sieve.put_script(account.id, VACATION_SCRIPT, text)
        sieve.set_active(account.id, VACATION_SCRIPT)
        log.info("web: vacation reply on for %s", account.address)
        notes = [("ok", "Đã bật trả lời tự động.", "The automatic reply is on.")]
        replaced = [name for name in active if name != VACATION_SCRIPT]
        if replaced:
            notes.append(("err", f"Bộ lọc \"{replaced[0]}\" đặt từ chương trình thư đã được tắt; bật lại khi bạn về.",
                              f"The filter \"{replaced[0]}\" set from your mail program was turned off; turn it on again when back."))
        return notes


def page(ctx: PortalContext) -> VacationPage:
    return VacationPage(ctx)
