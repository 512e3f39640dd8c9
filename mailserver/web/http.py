"""HTTP plumbing every portal page shares: the security headers, the request size limit, pages
answered from a thread, 404.

Why one place: every page must send the same strict headers (no scripts, no outside resources,
no caching of personal pages) and no page may leak a traceback to a browser.
"""

from __future__ import annotations

import logging
from typing import Callable

from twisted.internet import defer
from twisted.web import resource, server

log = logging.getLogger("mailserver.web")

#: a form is a few hundred bytes; anything larger is refused unread (413)
MAX_FORM_BYTES = 8 * 1024
HTML = b"text/html; charset=utf-8"
TEXT = b"text/plain; charset=utf-8"

HEADERS = {
    b"content-security-policy": (b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                 b"frame-ancestors 'none'; base-uri 'none'"),
    b"x-frame-options": b"DENY",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"cache-control": b"no-store",
    b"server": b"mailserver",
}

#: (status, content type, body) — what a page's thread work produces
Answer = tuple[int, bytes, bytes]


def prepare(request: server.Request, status: int = 200, content_type: bytes = HTML) -> None:
    request.setResponseCode(status)
    request.setHeader(b"content-type", content_type)
    for name, value in HEADERS.items():
        request.setHeader(name, value)
    if request.isSecure():  # R-SEC-1: browsers keep to HTTPS for this host for a year (RFC 6797)
        request.setHeader(b"strict-transport-security", b"max-age=31536000")


def client_host(request: server.Request) -> str:
    return str(getattr(request.getClientAddress(), "host", ""))


class Request(server.Request):
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


class AsyncPage(resource.Resource):
    """A page whose answer comes from a thread or coroutine: a failure becomes the 500 page
    (``error_page``), never a traceback."""

    isLeaf = True
    #: headers of this page that differ from HEADERS (set after them)
    own_headers: dict[bytes, bytes] = {}

    def __init__(self, error_page: Callable[[], bytes]) -> None:
        super().__init__()
        self.error_page = error_page

    def answer(self, request: server.Request, d: defer.Deferred) -> int:
        gone = []
        request.notifyFinish().addErrback(lambda _f: gone.append(True))

        def send(result: Answer) -> None:
            if gone:
                return
            status, content_type, body = result
            prepare(request, status, content_type)
            for name, value in self.own_headers.items():
                request.setHeader(name, value)
            request.write(body)
            request.finish()

        def failed(f) -> Answer:
            log.error("web: %s %s failed: %s", request.method.decode(), request.path.decode("latin-1"), f.getErrorMessage())
            return 500, HTML, self.error_page()

        d.addErrback(failed).addCallback(send)
        return server.NOT_DONE_YET


class NotFound(resource.Resource):
    isLeaf = True

    def __init__(self, body: bytes = b"") -> None:
        super().__init__()
        self.body = body

    def render(self, request: server.Request) -> bytes:
        prepare(request, 404)
        return self.body


class Root(resource.Resource):
    """``/<path>`` → its page; deeper paths only for pages that take them (``subpaths = True``)."""

    def __init__(self, pages: dict[bytes, resource.Resource], not_found: NotFound) -> None:
        super().__init__()
        self.pages = pages
        self.not_found = not_found

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        page = self.pages.get(path)
        if page is None or (request.postpath and not getattr(page, "subpaths", False)):
            return self.not_found
        return page
