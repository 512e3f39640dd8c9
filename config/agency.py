"""Who runs this server, as the portal, reports and announcements show it (``agency:``).

Why: users trust a page that carries their agency's name and logo and says whom to call; the
portal's layout and the reports read these instead of hard-coding one agency.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

#: logo files the portal serves, by suffix (its Content-Security-Policy allows images from itself)
LOGO_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".webp": "image/webp"}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Helpdesk(_Frozen):
    """Whom users call or write to; each line is shown when set."""

    phone: str | None = None
    email: str | None = None
    hours: str | None = None  # "7:30–17:00, thứ Hai – thứ Sáu"


class Agency(_Frozen):
    name: str = "Hệ thống thư điện tử công vụ"
    name_en: str = "Government e-mail service"
    # A PNG, SVG, JPEG or WebP file, relative to data_dir; none = the name alone.
    logo: Path | None = None
    helpdesk: Helpdesk = Helpdesk()

    @field_validator("logo")
    @classmethod
    def _known_type(cls, value: Path | None) -> Path | None:
        if value is not None and value.suffix.lower() not in LOGO_TYPES:
            raise ValueError(f"expected a {', '.join(sorted(LOGO_TYPES))} file, got {str(value)!r}")
        return value


def logo_path(agency: Agency, data_dir: Path) -> Path | None:
    """The logo file as an absolute path (relative ones are under ``data_dir``)."""
    if agency.logo is None:
        return None
    return agency.logo if agency.logo.is_absolute() else data_dir / agency.logo


def check_logo(settings):
    """Settings validator: a configured logo must be a readable file (``config check`` says so,
    rather than the portal failing at start)."""
    path = logo_path(settings.agency, settings.data_dir)
    if path is not None and not path.is_file():
        raise ValueError(f"agency.logo: no such file {str(path)!r}")
    return settings
