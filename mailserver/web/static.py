"""``/static/<file>``: the one stylesheet (``static/site.css``) and the agency's logo, read once at
start; the Content-Security-Policy allows styles and images from the portal itself only."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from twisted.web import resource, server

from config.agency import LOGO_TYPES, logo_path
from mailserver.web.context import PortalContext
from mailserver.web.http import NotFound, prepare

#: at most this large a logo file (it is read into memory and sent with every page view)
MAX_LOGO_BYTES = 512 * 1024


def load_logo(settings) -> tuple[str, bytes, bytes] | None:
    """(file name under /static/, content type, bytes) of ``agency.logo``; ValueError naming the
    key when the file cannot be used."""
    path: Path | None = logo_path(settings.agency, settings.data_dir)
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"agency.logo: cannot read {path}: {e.strerror}") from None
    if len(data) > MAX_LOGO_BYTES:
        raise ValueError(f"agency.logo: {path} is {len(data)} bytes; at most {MAX_LOGO_BYTES}")
    suffix = path.suffix.lower()
    return "logo" + suffix, LOGO_TYPES[suffix].encode(), data


class Static(resource.Resource):
    isLeaf = True
    subpaths = True

    def __init__(self, files: dict[bytes, tuple[bytes, bytes]], not_found: resource.Resource) -> None:
        super().__init__()
        self.files = files
        self.not_found = not_found

    def render_GET(self, request: server.Request) -> bytes:
        found = self.files.get(request.postpath[0]) if len(request.postpath) == 1 else None
        if found is None:
            return self.not_found.render(request)
        content_type, body = found
        prepare(request, 200, content_type)
        request.setHeader(b"cache-control", b"public, max-age=3600")
        return body


def page(ctx: PortalContext) -> Static:
    css = resources.files("mailserver.web").joinpath("static/site.css").read_bytes()
    files = {b"site.css": (b"text/css; charset=utf-8", css)}
    if ctx.logo is not None:
        name, content_type, data = ctx.logo
        files[name.encode()] = (content_type, data)
    return Static(files, NotFound(ctx.render.not_found()))
