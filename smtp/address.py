"""Parsing of the MAIL FROM / RCPT TO arguments (RFC 5321 section 4.1.2, RFC 6531 for UTF-8).

Stricter than aiosmtpd's parser, which takes ``<a b@c>`` or ``<a@b`` and lets control characters
through into what becomes a ``Return-Path:`` header. Lenient where real clients are sloppy: a space
after the colon, a missing pair of angle brackets, an ignored source route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UTF8 = "\u0080-\U0010ffff"
_ATEXT = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~\-{_UTF8}]"
_DOT_STRING = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_QUOTED = rf'"(?:[\x20\x21\x23-\x5b\x5d-\x7e{_UTF8}]|\\[\x20-\x7e])*"'
_LABEL = rf"[A-Za-z0-9{_UTF8}](?:[A-Za-z0-9\-{_UTF8}]*[A-Za-z0-9{_UTF8}])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*\.?"
_LITERAL = r"\[[\x21-\x5a\x5e-\x7e]+\]"
_MAILBOX = rf"(?:{_DOT_STRING}|{_QUOTED})@(?:{_DOMAIN}|{_LITERAL})"
_ROUTE = rf"(?:@{_DOMAIN}(?:,@{_DOMAIN})*:)"
_PATH = re.compile(rf"<{_ROUTE}?(?P<mailbox>{_MAILBOX})>|(?P<bare>{_MAILBOX})(?=\s|$)")
_PARAM = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*)(?:=([\x21-\x3c\x3e-\x7e" + _UTF8 + r"]+))?$")


class AddressSyntaxError(ValueError):
    """The argument is not ``<mailbox> [params]``."""


@dataclass(frozen=True, slots=True)
class PathArg:
    address: str  # "" for the null reverse-path <>
    params: dict[str, str | bool]  # keys upper-case; value True when given without "="

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].rstrip(".").lower()


def parse_path(
    arg: str | None, keyword: str, *, allow_null: bool, utf8: bool, postmaster_domain: str | None = None
) -> PathArg:
    """Parse ``FROM:<a@b> SIZE=1`` (keyword "FROM:") or ``TO:<a@b>`` (keyword "TO:").

    With ``postmaster_domain``, the bare ``<Postmaster>`` that RFC 5321 section 4.5.1 says must
    be accepted becomes ``postmaster@<that domain>``."""
    if not arg or arg[: len(keyword)].upper() != keyword:
        raise AddressSyntaxError("missing " + keyword)
    rest = arg[len(keyword) :].lstrip(" ")
    if allow_null and rest.startswith("<>") and (len(rest) == 2 or rest[2] == " "):
        return PathArg("", _parse_params(rest[2:]))
    if postmaster_domain and rest[:12].lower() == "<postmaster>":
        return PathArg(f"postmaster@{postmaster_domain}", _parse_params(rest[12:]))
    m = _PATH.match(rest)
    if m is None:
        raise AddressSyntaxError("bad path")
    address = m.group("mailbox") or m.group("bare")
    if not utf8 and not address.isascii():
        raise AddressSyntaxError("non-ASCII address without SMTPUTF8")
    if any("\udc80" <= c <= "\udcff" for c in address):  # undecodable bytes (surrogateescape)
        raise AddressSyntaxError("address is not valid UTF-8")
    return PathArg(address, _parse_params(rest[m.end() :]))


def _parse_params(text: str) -> dict[str, str | bool]:
    if text and not text.startswith(" "):
        raise AddressSyntaxError("junk after path")
    params: dict[str, str | bool] = {}
    for item in text.split():
        m = _PARAM.match(item)
        if m is None:
            raise AddressSyntaxError("bad parameter")
        params[m.group(1).upper()] = m.group(2) if m.group(2) is not None else True
    return params
