"""Jinja2 templates of the portal (``templates/``), in one layout with the agency's name, logo
and helpdesk (config/agency.py).

Why templates: pages are written as HTML, escaped by default (autoescape), and every page shares
one layout and one stylesheet (``/static/site.css``) instead of markup built in Python strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2

from config.settings import Settings


@dataclass(frozen=True)
class NavLink:
    href: str
    vi: str
    en: str


class Renderer:
    """Renders a template inside the layout; thread-safe (Jinja2 templates are)."""

    def __init__(self, settings: Settings, *, logo: str | None = None) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("mailserver.web", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        )
        self.env.globals.update(agency=settings.agency, logo=logo, nav=[])

    def set_nav(self, links: list[NavLink]) -> None:
        self.env.globals["nav"] = links

    def page(self, template: str, **values: Any) -> bytes:
        return self.env.get_template(template).render(**values).encode("utf-8")

    def message(self, title_vi: str, title_en: str, kind: str, vi: str, en: str) -> bytes:
        """A page saying one thing (an error, a refusal), Vietnamese first."""
        return self.page("message.html", title_vi=title_vi, title_en=title_en, kind=kind, vi=vi, en=en)

    def server_error(self) -> bytes:
        return self.message("Lỗi máy chủ", "Server error", "err", "Máy chủ không xử lý được yêu cầu; xin thử lại sau.",
                            "The server could not handle the request; please try again later.")

    def not_found(self) -> bytes:
        return self.message("Không tìm thấy", "Not found", "err", "Không có trang này.", "There is no such page.")
