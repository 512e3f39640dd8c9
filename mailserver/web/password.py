"""``/password``: a user changes the mailbox password (R-PASS-1..4).

Why: R-PASS-1 asks users to change their initial password at first login, R-PASS-3/4
periodically; mail clients cannot do that over IMAP or SMTP. The current password is checked as
at any login (argon2 in a thread, the same Authenticator); the new one against the profile's
rules (R-PASS-2/3) and must differ from the current one. Success makes the account active
(R-PASS-1 done) and ends its open IMAP/POP3 sessions at the next session check
(mailserver/sessions.py). A refusal comes no sooner than a second after the form was sent, and
says the same whether the address exists or not; after MAX_FAILURES refusals in ten minutes a
client address gets 429 until the window passes; with the server's login guard
(mailserver/accounts/guard.py) the portal counts, delays and blocks like IMAP, POP3 and
submission instead, and logs each attempt the same way. There is no session to hijack: the form
carries its own proof (the current password).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from twisted.internet import defer, task
from twisted.internet.threads import deferToThread
from twisted.web import server

from mailserver.accounts.auth import hash_password
from mailserver.directory_sync.connection import is_ldap_backed
from mailserver.policy.passwords import check_password
from mailserver.web.context import PortalContext
from mailserver.web.guidance import client_settings, initial_deadline, password_rules
from mailserver.web.http import HTML, Answer, AsyncPage, client_host, log, prepare
from storage.api import AccountState

#: seconds from a refused password to the reply (guessing is slow; timing says nothing)
FAILURE_DELAY = 1.0
#: refused passwords from one client address within FAILURE_WINDOW seconds before it gets 429
MAX_FAILURES = 10
FAILURE_WINDOW = 600.0
FIELDS = ("address", "current", "new", "confirm")


class PasswordPage(AsyncPage):
    def __init__(self, ctx: PortalContext) -> None:
        super().__init__(ctx.render.server_error)
        self.ctx = ctx
        self.render_page = ctx.render
        self.logins = ctx.logins
        self.settings = ctx.settings
        self.store = ctx.store
        self.auth = ctx.auth
        self.reactor = ctx.reactor
        self.failure_delay = FAILURE_DELAY
        self.rules = password_rules(ctx.settings.passwords)  # shown up front (R-PASS-2/3)
        self.deadline = initial_deadline(ctx.settings.passwords)  # R-PASS-1/3
        self.clients = client_settings(ctx.settings)  # the next step after a change
        self._failures: dict[str, list[float]] = {}  # client address → times of refused passwords

    def render_GET(self, request: server.Request) -> bytes:
        prepare(request)
        return self._form()

    def _recent_failures(self, client: str) -> list[float]:
        now = self.reactor.seconds()
        if len(self._failures) > 10_000:  # forget the quiet ones rather than grow without end
            self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > now - FAILURE_WINDOW}
        times = [t for t in self._failures.get(client, ()) if t > now - FAILURE_WINDOW]
        self._failures[client] = times
        return times

    def _form(self, address: str = "", problems: list[tuple[str, str]] = ()) -> bytes:
        return self.render_page.page("password.html", title_vi="Đổi mật khẩu", title_en="Change password",
                                     address=address, problems=list(problems),
                                     rules=self.rules, deadline=self.deadline)

    def _too_many(self) -> bytes:
        return self.render_page.message("Quá nhiều lần thử", "Too many attempts", "err",
                                        "Đã nhập sai quá nhiều lần; xin thử lại sau ít phút.",
                                        "Too many wrong attempts; try again in a few minutes.")

    def render_POST(self, request: server.Request) -> bytes | int:
        form = {k.decode("utf-8", "replace"): v[0].decode("utf-8", "replace") for k, v in request.args.items() if v}
        fields = {name: unicodedata.normalize("NFC", form.get(name, "")) for name in FIELDS}
        client = client_host(request)
        if self.logins is None and len(self._recent_failures(client)) >= MAX_FAILURES:
            prepare(request, 429)
            request.setHeader(b"retry-after", str(int(FAILURE_WINDOW)).encode())
            log.info("web: password changes from %s refused: too many failures", client)
            return self._too_many()
        return self.answer(request, defer.ensureDeferred(self._change(client=client, **fields)))

    async def _change(self, address: str, current: str, new: str, confirm: str, client: str = "") -> Answer:
        started = self.reactor.seconds()
        address = address.strip()
        rules = self.settings.passwords
        problems = []
        if new != confirm:
            problems.append(("Hai lần nhập mật khẩu mới không khớp nhau.", "The two new passwords differ."))
        if new == current:
            problems.append(("Mật khẩu mới phải khác mật khẩu hiện tại.", "The new password must differ from the current one."))
        problems += [(r.vi, r.en) for r in check_password(
            new, account_name=address if rules.reject_account_name else "", min_length=rules.min_length,
            min_classes=rules.min_classes)]
        if problems:  # nothing about the account is revealed or checked yet
            return 400, HTML, self._form(address, problems)

        async def verify() -> tuple[Any, str]:
            account = await deferToThread(self.auth.authenticate, address, current) if "@" in address else None
            return account, "" if account is not None else "credentials"

        if self.logins is None:
            account, _reason = await verify()
        else:
            attempt = await self.logins.attempt("web", client, address, verify, thread=deferToThread,
                                                sleep=lambda seconds: task.deferLater(self.reactor, seconds, lambda: None))
            if attempt.refused:
                return 429, HTML, self._too_many()
            account = attempt.account
        if account is None:
            log.info("web: password change refused for %r from %s", address, client)
            self._recent_failures(client).append(self.reactor.seconds())
            await task.deferLater(self.reactor, max(0.0, started + self.failure_delay - self.reactor.seconds()), lambda: None)
            lock_reason = getattr(self.auth, "lock_reason", None)
            locked = await deferToThread(lock_reason, address, current) if lock_reason and "@" in address else None
            if locked is not None:  # the right password: its owner may know why (guard.lock_after)
                why = (f"Hộp thư đang bị khoá ({locked}). Hãy liên hệ quản trị hệ thống để mở khoá.",
                       f"The mailbox is locked ({locked}). Ask the mail administrators to unlock it.")
                return 403, HTML, self._form(address, [why])
            wrong = ("Địa chỉ hoặc mật khẩu hiện tại không đúng, hoặc hộp thư đang bị khoá.",
                     "Wrong address or current password, or the mailbox is locked.")
            return 403, HTML, self._form(address, [wrong])
        if is_ldap_backed(account.password_hash):  # R-PROTO-3: the directory owns this password
            kept = ("Mật khẩu của hộp thư này do danh bạ LDAP của cơ quan quản lý: hãy đổi ở đó.",
                    "This mailbox's password is kept in the agency's LDAP directory: change it there.")
            return 409, HTML, self._form(address, [kept])
        from mailserver.accounts.history import refuse_reused  # passwords.history

        if (problem := await deferToThread(refuse_reused, self.store, rules, account.id, new)) is not None:
            return 400, HTML, self._form(address, [(problem.vi, problem.en)])
        pw_hash = await deferToThread(hash_password, rules, new)
        await deferToThread(self.store.accounts.set_password, account.id, pw_hash, state=AccountState.ACTIVE)
        log.info("web: password changed for %s", account.address)
        return 200, HTML, self.render_page.page("password_done.html", title_vi="Đã đổi mật khẩu", title_en="Password changed",
                                                address=account.address, clients=self.clients)


def page(ctx: PortalContext) -> PasswordPage:
    return PasswordPage(ctx)
