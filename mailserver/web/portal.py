"""Self-service portal on ``listeners.web`` (HTTPS by default, Twisted Web on the server's reactor).

Why: R-PASS-1 asks users to change their initial password at first login, R-PASS-3/4 periodically;
mail clients cannot do that over IMAP or SMTP, so without a page of our own only the operator could
(``mailserver account passwd``). Pages:

- ``/password``: the user's address, current password and new password twice. The current one is
  checked as at any login (argon2 in a thread, the same Authenticator); the new one against the
  profile's rules (R-PASS-2/3) and must differ from the current one. Success makes the account
  active (R-PASS-1 done) and ends its open IMAP/POP3 sessions at the next session check
  (mailserver/sessions.py). A refusal comes no sooner than a second after the form was sent, and says
  the same whether the address exists or not; after MAX_FAILURES refusals in ten minutes a client
  address gets 429 until the window passes; with the server's login guard
  (mailserver/accounts/guard.py) the portal counts, delays and blocks like IMAP, POP3 and
  submission instead, and logs each attempt the same way.
- ``/healthz``: ``ok`` once a store read succeeded (503 otherwise), for the agency's monitoring.
- ``/danh-ba``: the e-mail directory page (R-DIR-1) when ``web.publish_directory`` is on.
- ``/metrics``: Prometheus text (accounts by state, usage, queue, sessions, memory), only to
  ``web.metrics_from`` networks (loopback by default); 404 to anyone else.

Every page: Vietnamese first, English below; no cookies, no scripts, no third-party resources;
``Cache-Control: no-store`` and a strict Content-Security-Policy. There is no session to hijack:
each form carries its own proof (the current password).
"""

from __future__ import annotations

import html
import logging
import unicodedata
from typing import Any

from twisted.internet import defer, task
from twisted.internet.threads import deferToThread
from twisted.web import resource, server

from config.settings import Settings
from mailserver.accounts.auth import hash_password
from mailserver.policy.guard import is_trusted
from mailserver.policy.passwords import check_password
from storage.api import AccountState

log = logging.getLogger(__name__)

#: a form is a few hundred bytes; anything larger is refused unread (413)
MAX_FORM_BYTES = 8 * 1024
#: seconds from a refused password to the reply (guessing is slow; timing says nothing)
FAILURE_DELAY = 1.0
#: refused passwords from one client address within FAILURE_WINDOW seconds before it gets 429
MAX_FAILURES = 10
FAILURE_WINDOW = 600.0

_HEADERS = {
    b"content-security-policy": b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    b"x-frame-options": b"DENY",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"cache-control": b"no-store",
    b"server": b"mailserver",
}

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#222}"
          "label{display:block;margin-top:.8rem}input{width:100%;padding:.4rem;font-size:1rem}"
          "button{margin-top:1rem;padding:.5rem 1.2rem;font-size:1rem}.en{color:#666;font-size:.9em}"
          ".err{color:#a00}.ok{color:#070}")


def page(title_vi: str, title_en: str, body: str) -> bytes:
    return (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title_vi)} / {html.escape(title_en)}</title><style>{_STYLE}</style></head>"
        f'<body><h1>{html.escape(title_vi)}</h1><p class="en">{html.escape(title_en)}</p>{body}</body></html>'
    ).encode("utf-8")


def _message(css: str, vi: str, en: str) -> str:
    return f'<p class="{css}">{html.escape(vi)}<br><span class="en">{html.escape(en)}</span></p>'


_FORM = (
    '<form method="post" action="/password" autocomplete="off">'
    '<label>Địa chỉ thư điện tử <span class="en">/ E-mail address</span>'
    '<input name="address" type="email" required value="{address}"></label>'
    '<label>Mật khẩu hiện tại <span class="en">/ Current password</span>'
    '<input name="current" type="password" required></label>'
    '<label>Mật khẩu mới <span class="en">/ New password</span>'
    '<input name="new" type="password" required></label>'
    '<label>Nhập lại mật khẩu mới <span class="en">/ New password again</span>'
    '<input name="confirm" type="password" required></label>'
    '<button type="submit">Đổi mật khẩu / Change password</button></form>'
)


def _prepare(request: server.Request, status: int = 200, content_type: bytes = b"text/html; charset=utf-8") -> None:
    request.setResponseCode(status)
    request.setHeader(b"content-type", content_type)
    for name, value in _HEADERS.items():
        request.setHeader(name, value)


class _Request(server.Request):
    """Refuses a request body over MAX_FORM_BYTES before reading it (a declared length) or as
    soon as it passes the limit (chunked): 413 and the connection closed."""

    _budget = MAX_FORM_BYTES
    _refused = False

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > MAX_FORM_BYTES:
            self._too_big()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        self._budget -= len(data)
        if self._budget < 0:
            self._too_big()
            return
        if not self._refused:
            super().handleContentChunk(data)

    def _too_big(self) -> None:
        if not self._refused:
            self._refused = True
            transport = self.channel.transport
            transport.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            transport.loseConnection()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self._refused:
            super().requestReceived(command, path, version)


class _Async(resource.Resource):
    """A page whose answer comes from a thread: errors become a 500 page, never a traceback."""

    isLeaf = True

    def _answer(self, request: server.Request, d: defer.Deferred) -> int:
        gone = []
        request.notifyFinish().addErrback(lambda _f: gone.append(True))

        def send(result: tuple[int, bytes, bytes]) -> None:
            if gone:
                return
            status, content_type, body = result
            _prepare(request, status, content_type)
            request.write(body)
            request.finish()

        def failed(f) -> tuple[int, bytes, bytes]:
            log.error("web: %s %s failed: %s", request.method.decode(), request.path.decode("latin-1"), f.getErrorMessage())
            return 500, b"text/html; charset=utf-8", page("Lỗi máy chủ", "Server error", _message(
                "err", "Máy chủ không xử lý được yêu cầu; xin thử lại sau.", "The server could not handle the request; please try again later."))

        d.addErrback(failed).addCallback(send)
        return server.NOT_DONE_YET


def _too_many() -> bytes:
    return page("Quá nhiều lần thử", "Too many attempts", _message(
        "err", "Đã nhập sai quá nhiều lần; xin thử lại sau ít phút.", "Too many wrong attempts; try again in a few minutes."))


class PasswordPage(_Async):
    def __init__(self, settings: Settings, store: Any, auth: Any, reactor: Any, logins: Any = None) -> None:
        super().__init__()
        self.logins = logins  # mailserver.accounts.guard.LoginGuard, shared with IMAP, POP3, submission
        self.settings = settings
        self.store = store
        self.auth = auth
        self.reactor = reactor
        self.failure_delay = FAILURE_DELAY
        self._failures: dict[str, list[float]] = {}  # client address → times of refused passwords

    def render_GET(self, request: server.Request) -> bytes:
        _prepare(request)
        return self._form()

    def _recent_failures(self, client: str) -> list[float]:
        now = self.reactor.seconds()
        if len(self._failures) > 10_000:  # forget the quiet ones rather than grow without end
            self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > now - FAILURE_WINDOW}
        times = [t for t in self._failures.get(client, ()) if t > now - FAILURE_WINDOW]
        self._failures[client] = times
        return times

    def _form(self, address: str = "", notes: str = "") -> bytes:
        intro = _message("", "Đổi mật khẩu hộp thư. Mật khẩu ban đầu phải được đổi ở lần đăng nhập đầu tiên.",
                         "Change your mailbox password. An initial password must be changed at first login.")
        return page("Đổi mật khẩu", "Change password", intro + notes + _FORM.format(address=html.escape(address, quote=True)))

    def render_POST(self, request: server.Request) -> bytes | int:
        form = {k.decode("utf-8", "replace"): v[0].decode("utf-8", "replace") for k, v in request.args.items() if v}
        fields = {name: unicodedata.normalize("NFC", form.get(name, "")) for name in ("address", "current", "new", "confirm")}
        client = str(getattr(request.getClientAddress(), "host", ""))
        if self.logins is None and len(self._recent_failures(client)) >= MAX_FAILURES:
            _prepare(request, 429)
            request.setHeader(b"retry-after", str(int(FAILURE_WINDOW)).encode())
            log.info("web: password changes from %s refused: too many failures", client)
            return _too_many()
        return self._answer(request, defer.ensureDeferred(self._change(client=client, **fields)))

    async def _change(self, address: str, current: str, new: str, confirm: str, client: str = "") -> tuple[int, bytes, bytes]:
        html_type = b"text/html; charset=utf-8"
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
            notes = "".join(_message("err", vi, en) for vi, en in problems)
            return 400, html_type, self._form(address, notes)
        async def verify() -> tuple[Any, str]:
            account = await deferToThread(self.auth.authenticate, address, current) if "@" in address else None
            return account, "" if account is not None else "credentials"

        if self.logins is None:
            account, _reason = await verify()
        else:
            attempt = await self.logins.attempt("web", client, address, verify, thread=deferToThread,
                                                sleep=lambda seconds: task.deferLater(self.reactor, seconds, lambda: None))
            if attempt.refused:
                return 429, html_type, _too_many()
            account = attempt.account
        if account is None:
            log.info("web: password change refused for %r from %s", address, client)
            self._recent_failures(client).append(self.reactor.seconds())
            await task.deferLater(self.reactor, max(0.0, started + self.failure_delay - self.reactor.seconds()), lambda: None)
            lock_reason = getattr(self.auth, "lock_reason", None)
            locked = await deferToThread(lock_reason, address, current) if lock_reason and "@" in address else None
            if locked is not None:  # the right password: its owner may know why (an account lock)
                notes = _message("err", f"Hộp thư đang bị khoá ({locked}). Hãy liên hệ quản trị hệ thống để mở khoá.",
                                 f"The mailbox is locked ({locked}). Ask the mail administrators to unlock it.")
                return 403, html_type, self._form(address, notes)
            notes = _message("err", "Địa chỉ hoặc mật khẩu hiện tại không đúng, hoặc hộp thư đang bị khoá.",
                             "Wrong address or current password, or the mailbox is locked.")
            return 403, html_type, self._form(address, notes)
        pw_hash = await deferToThread(hash_password, rules, new)
        await deferToThread(self.store.accounts.set_password, account.id, pw_hash, state=AccountState.ACTIVE)
        log.info("web: password changed for %s", account.address)
        done = _message("ok", "Đã đổi mật khẩu. Các chương trình thư sẽ hỏi mật khẩu mới.",
                        "Password changed. Your mail programs will ask for the new password.")
        return 200, html_type, page("Đổi mật khẩu", "Change password", done)


class Health(_Async):
    def __init__(self, store: Any) -> None:
        super().__init__()
        self.store = store

    def render_GET(self, request: server.Request) -> int:
        d = deferToThread(self.store.accounts.list_domains)
        d.addCallbacks(lambda _domains: (200, b"text/plain; charset=utf-8", b"ok\n"),
                       lambda f: (503, b"text/plain; charset=utf-8", b"store unavailable\n"))
        return self._answer(request, d)


class Directory(_Async):
    def __init__(self, org: Any, title: str) -> None:
        super().__init__()
        self.org = org
        self.title = title

    def render_GET(self, request: server.Request) -> int:
        from mailserver.accounts import directory

        def build() -> tuple[int, bytes, bytes]:
            body = directory.render(directory.entries(self.org.directory_rows()), "html", title=self.title)
            return 200, b"text/html; charset=utf-8", body.encode("utf-8")

        return self._answer(request, deferToThread(build))


class Metrics(_Async):
    """Prometheus text format (Zabbix reads it too), from ``web.metrics_from`` networks only."""

    def __init__(self, settings: Settings, store: Any, guard: Any, started: float, reactor: Any) -> None:
        super().__init__()
        self.allowed = settings.web.metrics_from
        self.store = store
        self.guard = guard
        self.started = started
        self.reactor = reactor

    def render_GET(self, request: server.Request) -> bytes | int:
        if not is_trusted(getattr(request.getClientAddress(), "host", ""), self.allowed):
            return NotFound().render(request)
        sessions = self.guard.count_by_protocol() if self.guard is not None else {}
        uptime = self.reactor.seconds() - self.started
        d = deferToThread(self.store.usage.stats)
        d.addCallback(lambda stats: (200, b"text/plain; version=0.0.4; charset=utf-8",
                                     metrics_text(stats, sessions, uptime, _memory()).encode()))
        return self._answer(request, d)


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


class Index(resource.Resource):
    isLeaf = True

    def __init__(self, directory: bool) -> None:
        super().__init__()
        self.directory = directory

    def render_GET(self, request: server.Request) -> bytes:
        _prepare(request)
        links = '<ul><li><a href="/password">Đổi mật khẩu <span class="en">/ Change password</span></a></li>'
        if self.directory:
            links += '<li><a href="/danh-ba">Danh bạ thư điện tử <span class="en">/ E-mail directory</span></a></li>'
        return page("Hộp thư điện tử", "Mail", links + "</ul>")


class NotFound(resource.Resource):
    isLeaf = True

    def render(self, request: server.Request) -> bytes:
        _prepare(request, 404)
        return page("Không tìm thấy", "Not found", "")


class Root(resource.Resource):
    def __init__(self, pages: dict[bytes, resource.Resource]) -> None:
        super().__init__()
        self.pages = pages

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        if request.postpath:  # /password/x and the like
            return NotFound()
        return self.pages.get(path, NotFound())


def build_site(settings: Settings, store: Any, auth: Any, org: Any, reactor: Any, guard: Any = None,
               logins: Any = None) -> server.Site:
    pages: dict[bytes, resource.Resource] = {
        b"": Index(settings.web.publish_directory),
        b"password": PasswordPage(settings, store, auth, reactor, logins),
        b"healthz": Health(store),
        b"metrics": Metrics(settings, store, guard, reactor.seconds(), reactor),
    }
    if settings.web.publish_directory and org is not None:
        pages[b"danh-ba"] = Directory(org, settings.web.directory_title)
    site = server.Site(Root(pages))
    site.requestFactory = _Request
    site.displayTracebacks = False
    site.noisy = False
    return site


def start_web(reactor: Any, settings: Settings, store: Any, auth: Any, org: Any, tls: Any, guard: Any = None,
              logins: Any = None) -> list:
    """Listen on ``listeners.web`` (HTTPS with ``tls``, or plain HTTP on loopback when
    ``web.tls`` is off; a PROXY header first from ``proxy.trusted``, mailserver/listen.py);
    returns the listening ports (app.py stops them)."""
    listener = settings.listeners.web
    if listener is None:
        return []
    from mailserver.listen import listen

    site = build_site(settings, store, auth, org, reactor, guard, logins)
    # behind HAProxy (proxy.trusted) the PROXY header names the client the login guard sees
    return [listen(reactor, settings.proxy, listener.port, site, interface=listener.address,
                   tls=tls if settings.web.tls else None)]
