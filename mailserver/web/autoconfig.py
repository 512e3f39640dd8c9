"""Mail clients set themselves up from the portal: Thunderbird autoconfig, Outlook autodiscover
(POX) and an Apple ``.mobileconfig`` profile — all from the listeners actually configured.

- ``/.well-known/autoconfig/mail/config-v1.1.xml`` and ``/mail/config-v1.1.xml`` (the latter is
  what Thunderbird asks ``autoconfig.<domain>`` for): clientConfig 1.1.
- ``/autodiscover/autodiscover.xml`` (POST, what Outlook sends to ``autodiscover.<domain>``): the
  Outlook POX response (schema responseschema/2006a) for the address in the request.
- ``/mobileconfig``: a form (address and password, checked as at any login, through the login
  guard when the server has one); the answer is an unsigned configuration profile (plist) with
  the account, for iPhone, iPad and macOS Mail.

Implicit TLS listeners are preferred over STARTTLS ones; a protocol with no listener is left out.
The host name given to clients is ``hostname`` from the configuration.
"""

from __future__ import annotations

import logging
import plistlib
import unicodedata
import uuid
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from twisted.internet import defer, task
from twisted.internet.threads import deferToThread
from twisted.web import resource, server

from config.settings import Settings
from mailserver.web.http import HTML, client_host, prepare

log = logging.getLogger(__name__)

REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
FAILURE_DELAY = 1.0


def servers(settings: Settings) -> dict[str, list[tuple[int, str]]]:
    """Protocol → [(port, "SSL"|"STARTTLS")], implicit TLS first."""
    ls = settings.listeners
    pairs = {"imap": [(ls.imaps, "SSL"), (ls.imap, "STARTTLS")], "pop3": [(ls.pop3s, "SSL"), (ls.pop3, "STARTTLS")],
             "smtp": [(ls.submissions, "SSL"), (ls.submission, "STARTTLS")]}
    return {proto: [(listener.port, kind) for listener, kind in options if listener is not None]
            for proto, options in pairs.items()}


def thunderbird_xml(settings: Settings, domain: str) -> bytes:
    host = quoteattr(settings.hostname)[1:-1]
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<clientConfig version="1.1">',
           f'  <emailProvider id={quoteattr(domain)}>']
    out += [f"    <domain>{escape(d)}</domain>" for d in settings.domains]
    out += [f"    <displayName>{escape(settings.hostname)}</displayName>",
            f"    <displayShortName>{escape(domain)}</displayShortName>"]
    all_servers = servers(settings)
    for proto in ("imap", "pop3", "smtp"):
        tag = "outgoingServer" if proto == "smtp" else "incomingServer"
        for port, kind in all_servers[proto]:
            out += [f'    <{tag} type="{proto}">', f"      <hostname>{host}</hostname>", f"      <port>{port}</port>",
                    f"      <socketType>{kind}</socketType>", "      <authentication>password-cleartext</authentication>",
                    "      <username>%EMAILADDRESS%</username>", f"    </{tag}>"]
    out += ["  </emailProvider>", "</clientConfig>", ""]
    return "\n".join(out).encode("utf-8")


def autodiscover_xml(settings: Settings, address: str) -> bytes:
    proto_names = {"imap": "IMAP", "pop3": "POP3", "smtp": "SMTP"}
    parts = []
    for proto, entries in servers(settings).items():
        if not entries:
            continue
        port, kind = entries[0]
        parts.append(
            f"<Protocol><Type>{proto_names[proto]}</Type><Server>{escape(settings.hostname)}</Server><Port>{port}</Port>"
            f"<LoginName>{escape(address)}</LoginName><DomainRequired>off</DomainRequired><SPA>off</SPA>"
            f"<SSL>on</SSL>{'<Encryption>TLS</Encryption>' if kind == 'STARTTLS' else ''}"
            f"<AuthRequired>on</AuthRequired>{'<UsePOPAuth>on</UsePOPAuth>' if proto == 'smtp' else ''}</Protocol>")
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<Autodiscover xmlns="{RESPONSE_NS}"><Response xmlns="{OUTLOOK_NS}">'
            f"<Account><AccountType>email</AccountType><Action>settings</Action>{''.join(parts)}</Account>"
            "</Response></Autodiscover>\n").encode("utf-8")


def request_address(body: bytes) -> str | None:
    """The EMailAddress of an Outlook POX request; None when it is not one. (expat refuses
    external entities; the portal's request limit bounds the size.)"""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        return None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    node = root.find(f".//{{{REQUEST_NS}}}EMailAddress")
    text = (node.text or "").strip() if node is not None else ""
    return text if "@" in text and len(text) <= 254 else None


def mobileconfig(settings: Settings, address: str, password: str, display_name: str) -> bytes:
    all_servers = servers(settings)
    incoming = all_servers["imap"] or all_servers["pop3"]
    kind = "EmailTypeIMAP" if all_servers["imap"] else "EmailTypePOP"
    outgoing = all_servers["smtp"]
    if not incoming or not outgoing:
        raise ValueError("no IMAP/POP3 or submission listener is configured")
    domain = address.rpartition("@")[2]
    ident = ".".join(reversed(settings.hostname.split(".")))
    account_uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"mail.{address}")).upper()
    payload = {
        "PayloadType": "com.apple.mail.managed", "PayloadVersion": 1, "PayloadUUID": account_uuid,
        "PayloadIdentifier": f"{ident}.mail.{account_uuid}", "PayloadDisplayName": address,
        "EmailAccountDescription": address, "EmailAccountName": display_name, "EmailAccountType": kind,
        "EmailAddress": address,
        "IncomingMailServerHostName": settings.hostname, "IncomingMailServerPortNumber": incoming[0][0],
        "IncomingMailServerUseSSL": True, "IncomingMailServerUsername": address, "IncomingPassword": password,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": settings.hostname, "OutgoingMailServerPortNumber": outgoing[0][0],
        "OutgoingMailServerUseSSL": True, "OutgoingMailServerUsername": address,
        "OutgoingMailServerAuthentication": "EmailAuthPassword", "OutgoingPasswordSameAsIncomingPassword": True,
    }
    profile_uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"profile.{address}")).upper()
    profile = {"PayloadType": "Configuration", "PayloadVersion": 1, "PayloadUUID": profile_uuid,
               "PayloadIdentifier": f"{ident}.profile.{profile_uuid}", "PayloadDisplayName": f"Thư điện tử {domain}",
               "PayloadDescription": f"Hộp thư {address} / Mailbox {address}", "PayloadContent": [payload]}
    return plistlib.dumps(profile)


# -- resources ----------------------------------------------------------------------------------

def _send(request: server.Request, status: int, content_type: bytes, body: bytes) -> bytes:
    prepare(request, status, content_type)  # the portal's headers (no-store, nosniff, CSP)
    return body


class ThunderbirdConfig(resource.Resource):
    isLeaf = True

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def render_GET(self, request: server.Request) -> bytes:
        raw = (request.args.get(b"emailaddress") or [b""])[0].decode("utf-8", "replace")
        domain = raw.rpartition("@")[2].lower() or self.settings.domains[0]
        if domain not in self.settings.domains:
            domain = self.settings.domains[0]
        return _send(request, 200, b"application/xml; charset=utf-8", thunderbird_xml(self.settings, domain))


class _Tree(resource.Resource):
    """A fixed path below the page's first segment; anything else is 404."""

    subpaths = True  # the portal's Root lets a request go below it

    def __init__(self, routes: dict[tuple[bytes, ...], resource.Resource]) -> None:
        super().__init__()
        self.routes = routes

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        key = (path, *request.postpath)
        request.postpath = []
        return self.routes.get(key, _NotFound())

    def render(self, request: server.Request) -> bytes:
        return _send(request, 404, b"text/plain; charset=utf-8", b"not found\n")


class _NotFound(resource.Resource):
    isLeaf = True

    def render(self, request: server.Request) -> bytes:
        return _send(request, 404, b"text/plain; charset=utf-8", b"not found\n")


class Autodiscover(resource.Resource):
    isLeaf = True

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def render_POST(self, request: server.Request) -> bytes:
        address = request_address(request.content.read())
        if address is None:
            return _send(request, 400, b"text/plain; charset=utf-8", b"not an Outlook autodiscover request\n")
        return _send(request, 200, b"application/xml; charset=utf-8", autodiscover_xml(self.settings, address))

    def render_GET(self, request: server.Request) -> bytes:
        return _send(request, 405, b"text/plain; charset=utf-8", b"POST an Outlook autodiscover request\n")


class MobileConfig(resource.Resource):
    """``/mobileconfig``: the form in the portal's layout; a right password downloads the profile."""

    isLeaf = True
    TITLE = {"title_vi": "Cài đặt thư trên thiết bị Apple", "title_en": "Set up mail on Apple devices"}

    def __init__(self, ctx: Any) -> None:
        super().__init__()
        self.settings, self.auth, self.reactor, self.logins = ctx.settings, ctx.auth, ctx.reactor, ctx.logins
        self.render_page = ctx.render

    def _form(self, address: str = "", problems: list[tuple[str, str]] = ()) -> bytes:
        return self.render_page.page("mobileconfig.html", **self.TITLE, address=address, problems=list(problems))

    def render_GET(self, request: server.Request) -> bytes:
        prepare(request)
        return self._form()

    def render_POST(self, request: server.Request) -> int:
        form = {k.decode("utf-8", "replace"): v[0].decode("utf-8", "replace") for k, v in request.args.items() if v}
        address = unicodedata.normalize("NFC", form.get("address", "")).strip()
        password = unicodedata.normalize("NFC", form.get("password", ""))
        gone = []
        request.notifyFinish().addErrback(lambda _f: gone.append(True))

        def done(result: tuple[int, bytes, bytes, bytes]) -> None:
            if gone:
                return
            status, content_type, body, filename = result
            prepare(request, status, content_type)
            if filename:
                request.setHeader(b"content-disposition", b'attachment; filename="' + filename + b'"')
            request.write(body)
            request.finish()

        def failed(f) -> tuple[int, bytes, bytes, bytes]:
            log.error("web: /mobileconfig failed: %s", f.getErrorMessage())
            return 500, HTML, self.render_page.server_error(), b""

        d = defer.ensureDeferred(self._profile(address, password, client_host(request)))
        d.addErrback(failed).addCallback(done)
        return server.NOT_DONE_YET

    async def _profile(self, address: str, password: str, client: str) -> tuple[int, bytes, bytes, bytes]:
        started = self.reactor.seconds()

        async def verify() -> tuple[Any, str]:
            account = await deferToThread(self.auth.authenticate, address, password) if "@" in address and password else None
            return account, "" if account is not None else "credentials"

        if self.logins is None:
            account, _ = await verify()
        else:
            attempt = await self.logins.attempt("web", client, address, verify, thread=deferToThread,
                                                sleep=lambda s: task.deferLater(self.reactor, s, lambda: None))
            account = None if attempt.refused else attempt.account
        if account is None:
            await task.deferLater(self.reactor, max(0.0, started + FAILURE_DELAY - self.reactor.seconds()), lambda: None)
            wrong = ("Địa chỉ hoặc mật khẩu không đúng, hoặc hộp thư đang bị khoá.",
                     "Wrong address or password, or the mailbox is locked.")
            return 403, HTML, self._form(address, [wrong]), b""
        body = mobileconfig(self.settings, account.address, password, account.display_name)
        name = account.address.partition("@")[0].encode("ascii", "replace") + b".mobileconfig"
        return 200, b"application/x-apple-aspen-config", body, name


def mail_page(ctx: Any) -> _Tree:
    """``/mail/config-v1.1.xml``, what Thunderbird asks ``autoconfig.<domain>`` for."""
    return _Tree({(b"config-v1.1.xml",): ThunderbirdConfig(ctx.settings)})


def well_known_autoconfig(ctx: Any) -> _Tree:
    """``/.well-known/autoconfig/mail/config-v1.1.xml`` (mailserver/web/well_known.py holds it)."""
    return _Tree({(b"mail", b"config-v1.1.xml"): ThunderbirdConfig(ctx.settings)})


def autodiscover_page(ctx: Any) -> _Tree:
    return _Tree({(b"autodiscover.xml",): Autodiscover(ctx.settings)})


def autodiscover_upper_page(ctx: Any) -> _Tree:  # Outlook also asks with capitals
    return _Tree({(b"Autodiscover.xml",): Autodiscover(ctx.settings)})


def mobileconfig_page(ctx: Any) -> MobileConfig:
    return MobileConfig(ctx)
