"""Self-service portal on ``listeners.web`` (HTTPS by default, Twisted Web on the server's reactor).

``ROUTES`` lists every page: a path, the function building its resource from the
``PortalContext`` (None when the configuration turns it off) and, for pages users look for, the
link on the home page. A new page is a module of its own in mailserver/web/ and one line here.

Every page: Vietnamese first, English below, in the layout of ``templates/base.html`` with the
agency's name, logo and helpdesk (config/agency.py) and the one stylesheet ``/static/site.css``;
no cookies, no scripts, no third-party resources; ``Cache-Control: no-store`` and a strict
Content-Security-Policy (mailserver/web/http.py).
"""

from __future__ import annotations

from typing import Any

from twisted.web import server

from config.settings import Settings
from mailserver.web import autoconfig, directory, health, index, metrics, password, reports, static, vacation, well_known
from mailserver.web.context import PortalContext, Route
from mailserver.web.http import NotFound, Request, Root
from mailserver.web.metrics import metrics_text  # noqa: F401  (its historical home)
from mailserver.web.render import NavLink, Renderer

ROUTES: tuple[Route, ...] = (
    Route("", index.page),
    Route("static", static.page),
    Route("password", password.page, nav=("Đổi mật khẩu", "Change password")),  # R-PASS-1..4
    Route("vacation", vacation.page, nav=("Trả lời tự động", "Out-of-office reply")),  # Sieve vacation (RFC 5230)
    Route("danh-ba", directory.page, nav=("Danh bạ thư điện tử", "E-mail directory")),  # R-DIR-1
    Route("healthz", health.page),
    Route("metrics", metrics.page),
    Route("reports", reports.page),  # R-OPS-2, operators from web.admin_from only
    Route(".well-known", well_known.page),  # MTA-STS policy (RFC 8461), Thunderbird autoconfig
    Route("mail", autoconfig.mail_page),  # Thunderbird autoconfig at autoconfig.<domain>
    Route("autodiscover", autoconfig.autodiscover_page),  # Outlook (POX)
    Route("Autodiscover", autoconfig.autodiscover_upper_page),
    Route("mobileconfig", autoconfig.mobileconfig_page, nav=("Cài đặt trên thiết bị Apple", "Set up Apple devices")),
)


def build_site(settings: Settings, store: Any, auth: Any, org: Any, reactor: Any, guard: Any = None,
               logins: Any = None, routes: tuple[Route, ...] = ROUTES) -> server.Site:
    """The portal's site; ValueError naming the key when the configuration cannot be served
    (an unreadable ``agency.logo``)."""
    logo = static.load_logo(settings)
    render = Renderer(settings, logo=logo[0] if logo else None)
    ctx = PortalContext(settings=settings, store=store, auth=auth, org=org, reactor=reactor, render=render,
                        guard=guard, logins=logins, logo=logo)
    pages = {}
    links = []
    for route in routes:
        built = route.page(ctx)
        if built is None:
            continue
        pages[route.path.encode()] = built
        if route.nav is not None:
            links.append(NavLink("/" + route.path, *route.nav))
    render.set_nav(links)
    site = server.Site(Root(pages, NotFound(render.not_found())))
    site.requestFactory = Request
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
