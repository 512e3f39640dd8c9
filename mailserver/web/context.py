"""What every portal page is built from (``PortalContext``) and how a page is registered
(``Route``, listed in ``mailserver/web/portal.py:ROUTES``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from twisted.web import resource

from config.settings import Settings
from mailserver.web.render import Renderer


@dataclass(frozen=True)
class PortalContext:
    """The server's parts as the portal sees them; built once by ``build_site``."""

    settings: Settings
    store: Any  # storage.api roles: store.accounts, store.usage, ...
    auth: Any  # mailserver.accounts.auth.Authenticator
    org: Any  # the organisation service (directory, units), or None
    reactor: Any
    render: Renderer
    guard: Any = None  # mailserver.sessions.SessionGuard: logged-in sessions
    logins: Any = None  # mailserver.accounts.guard.LoginGuard, shared with IMAP, POP3, submission
    logo: tuple[str, bytes, bytes] | None = None  # agency.logo: (name under /static/, type, bytes)


@dataclass(frozen=True)
class Route:
    """``/<path>`` served by ``page(ctx)`` (None: not served under this configuration); ``nav``
    (Vietnamese, English) puts a link to it on the home page."""

    path: str
    page: Callable[[PortalContext], resource.Resource | None]
    nav: tuple[str, str] | None = None
