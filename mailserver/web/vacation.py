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
import html
import logging
import unicodedata
from typing import Any

from twisted.internet import defer, task
from twisted.internet.threads import deferToThread
from twisted.web import server

from config.settings import Settings
from mailserver.web.portal import FAILURE_DELAY, _Async, _message, _prepare, _too_many, page
from sieve.script import compile_script

log = logging.getLogger(__name__)

VACATION_SCRIPT = "nghi-phep"  # the script this page owns

_FORM = (
    '<form method="post" action="/vacation" autocomplete="off">'
    '<label>Địa chỉ thư điện tử <span class="en">/ E-mail address</span>'
    '<input name="address" type="email" required value="{address}"></label>'
    '<label>Mật khẩu <span class="en">/ Password</span><input name="password" type="password" required></label>'
    '<label><input name="enabled" type="radio" value="on" style="width:auto" checked> Bật trả lời tự động '
    '<span class="en">/ Reply automatically</span></label>'
    '<label><input name="enabled" type="radio" value="off" style="width:auto"> Tắt '
    '<span class="en">/ Turn off</span></label>'
    '<label>Tiêu đề thư trả lời <span class="en">/ Subject</span>'
    '<input name="subject" value="{subject}" maxlength="200"></label>'
    '<label>Nội dung <span class="en">/ Message</span>'
    '<textarea name="reason" rows="6" style="width:100%" maxlength="4000">{reason}</textarea></label>'
    '<label>Đến hết ngày (không bắt buộc) <span class="en">/ Until (optional)</span>'
    '<input name="until" type="date" value="{until}"></label>'
    '<label>Trả lời mỗi người gửi một lần trong (ngày) <span class="en">/ Once per sender every (days)</span>'
    '<input name="days" type="number" min="1" max="30" value="{days}"></label>'
    '<button type="submit">Lưu / Save</button></form>'
)
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


class VacationPage(_Async):
    def __init__(self, settings: Settings, store: Any, auth: Any, reactor: Any, logins: Any = None) -> None:
        super().__init__()
        self.settings, self.store, self.auth, self.reactor, self.logins = settings, store, auth, reactor, logins

    def _form(self, fields: dict[str, str] | None = None, notes: str = "") -> bytes:
        f = {"address": "", "subject": _DEFAULT_SUBJECT, "reason": "", "until": "", "days": "3", **(fields or {})}
        intro = _message("", "Đặt thư trả lời tự động khi bạn vắng mặt. Mỗi người gửi chỉ nhận một thư trả lời; "
                         "thư từ danh sách thư và thư tự động không được trả lời.",
                         "Set an automatic reply while you are away. Each sender gets one reply; mailing lists "
                         "and automatic mail get none.")  # fmt: skip
        return page("Trả lời tự động", "Out-of-office reply",
                    intro + notes + _FORM.format(**{k: html.escape(v, quote=True) for k, v in f.items()}))

    def render_GET(self, request: server.Request) -> bytes:
        _prepare(request)
        return self._form()

    def render_POST(self, request: server.Request) -> int:
        form = {k.decode("utf-8", "replace"): v[0].decode("utf-8", "replace") for k, v in request.args.items() if v}
        names = ("address", "password", "enabled", "subject", "reason", "until", "days")
        fields = {n: unicodedata.normalize("NFC", form.get(n, "")) for n in names}
        client = str(getattr(request.getClientAddress(), "host", ""))
        return self._answer(request, defer.ensureDeferred(self._save(client, fields)))

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

    async def _save(self, client: str, f: dict[str, str]) -> tuple[int, bytes, bytes]:
        html_type = b"text/html; charset=utf-8"
        started = self.reactor.seconds()
        shown = {k: v for k, v in f.items() if k != "password"}
        problems, days, until = self._problems(f)
        if problems:
            return 400, html_type, self._form(shown, "".join(_message("err", vi, en) for vi, en in problems))
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
                return 429, html_type, _too_many()
            account = attempt.account
        if account is None:
            await task.deferLater(self.reactor, max(0.0, started + FAILURE_DELAY - self.reactor.seconds()), lambda: None)
            return 403, html_type, self._form(shown, _message("err", "Địa chỉ hoặc mật khẩu không đúng.",
                                                              "Wrong address or password."))
        notes = await deferToThread(self._apply, account, f, days, until)
        return 200, html_type, page("Trả lời tự động", "Out-of-office reply", notes)

    def _apply(self, account: Any, f: dict[str, str], days: int, until: _dt.date | None) -> str:
        """In a thread: write and activate (or deactivate) the script; the notes to show."""
        sieve = self.store.sieve
        active = [s.name for s in sieve.list_scripts(account.id) if s.active]
        if f["enabled"] == "off":
            if VACATION_SCRIPT in active:
                sieve.set_active(account.id, None)
            log.info("web: vacation reply off for %s", account.address)
            return _message("ok", "Đã tắt trả lời tự động.", "The automatic reply is off.")
        text = vacation_script(f["subject"].strip() or _DEFAULT_SUBJECT, f["reason"].replace("\r\n", "\n").replace("\n", "\r\n"), days, until)
        compile_script(text)  # what delivery will run; a failure here is a bug (500 page, logged)
        sieve.put_script(account.id, VACATION_SCRIPT, text)
        sieve.set_active(account.id, VACATION_SCRIPT)
        log.info("web: vacation reply on for %s", account.address)
        notes = _message("ok", "Đã bật trả lời tự động.", "The automatic reply is on.")
        replaced = [name for name in active if name != VACATION_SCRIPT]
        if replaced:
            notes += _message("err", f"Bộ lọc \"{replaced[0]}\" đặt từ chương trình thư đã được tắt; bật lại khi bạn về.",
                              f"The filter \"{replaced[0]}\" set from your mail program was turned off; turn it on again when back.")
        return notes
