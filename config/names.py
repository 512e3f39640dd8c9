"""Domain and host names as configuration accepts them: DNS labels of letters, digits and
hyphens, each at most 63 characters, at most 253 in all (RFC 1035, RFC 5321 section 4.1.2);
an internationalised name (``bộ-tư-pháp.vn``) is accepted and kept in its IDNA form
(``xn--b-t-php-…``, RFC 5891), which is what DNS and SMTP carry."""

from __future__ import annotations

import re

import idna

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def check_domain(value: str) -> str:
    """The ASCII (IDNA) form of ``value``, lower-case, without a final dot; ValueError saying
    what is wrong otherwise."""
    name = value.strip().rstrip(".").lower()
    if not name:
        raise ValueError("a domain name is empty")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"{value!r} is not a valid internationalised domain name: {exc}") from None
    if len(name) > 253:
        raise ValueError(f"{value!r} is longer than 253 characters")
    for label in name.split("."):
        if len(label) > 63:
            raise ValueError(f"{value!r}: the label {label[:20]}… is longer than 63 characters")
        if not _LABEL.match(label):
            raise ValueError(f"{value!r} is not a domain name: labels are letters, digits and inner hyphens "
                             "separated by dots")
    return name
