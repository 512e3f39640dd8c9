"""Where to send mail for a domain: static routes first, then MX (RFC 5321 section 5.1).

``routes`` (config; a stable key): ``{"other.gov.vn": "10.1.2.3:25", "*": "relay:25"}``.
An exact domain wins over ``*`` (the smarthost); a routed host is used as given, no MX look-up.
Otherwise: MX records in preference order (equal preferences shuffled), each host's A/AAAA
addresses; no MX at all → the domain's own addresses (implicit MX); a null MX (RFC 7505) or a
domain that does not exist → permanent failure.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from typing import Mapping

from smtp.outbound.dns import DnsTempError, NXDomain, Resolver

DEFAULT_PORT = 25


@dataclass(frozen=True, slots=True)
class Hop:
    host: str  # the name (MX host or route), for logs and TLS server name
    address: str  # IP address to connect to
    port: int

    def __str__(self) -> str:
        ip = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.host}[{ip}]:{self.port}" if self.host != self.address else f"{ip}:{self.port}"


class NoRoute(Exception):
    """Permanent: mail for this domain cannot be delivered (``status`` is the RFC 3463 code)."""

    def __init__(self, status: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def parse_route(value: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or ``v6`` → (host, port)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else DEFAULT_PORT
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host, int(port)
    return value, DEFAULT_PORT


def route_for(domain: str, routes: Mapping[str, str]) -> tuple[str, int] | None:
    domain = domain.lower().rstrip(".")
    for key, value in routes.items():
        if key.lower().rstrip(".") == domain:
            return parse_route(value)
    if "*" in routes:
        return parse_route(routes["*"])
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def _addresses(host: str, resolver: Resolver) -> list[str]:
    return [host] if _is_ip(host) else await resolver.a(host)


async def next_hops(domain: str, routes: Mapping[str, str], resolver: Resolver, *, mx_port: int = DEFAULT_PORT) -> list[Hop]:
    """The addresses to try for ``domain``, best first. Raises ``NoRoute`` (permanent) or
    ``DnsTempError`` (temporary). ``mx_port`` is 25 except in tests."""
    routed = route_for(domain, routes)
    if routed is not None:
        host, port = routed
        try:
            addresses = await _addresses(host, resolver)
        except NXDomain:
            raise DnsTempError(f"route host {host} does not resolve") from None  # a config error: keep mail
        if not addresses:
            raise DnsTempError(f"route host {host} has no address")
        return [Hop(host, a, port) for a in addresses]
    try:
        mx = await resolver.mx(domain)
    except NXDomain:
        raise NoRoute("5.1.2", f"domain {domain} does not exist") from None
    if len(mx) == 1 and mx[0][1] in ("", "."):
        raise NoRoute("5.1.10", f"domain {domain} accepts no mail (null MX)")
    if not mx:
        mx = [(0, domain.lower().rstrip("."))]
    ordered: list[tuple[int, float, str]] = [(pref, random.random(), host) for pref, host in mx if host not in ("", ".")]
    ordered.sort()
    hops: list[Hop] = []
    temp: list[str] = []
    for _pref, _r, host in ordered:
        try:
            hops += [Hop(host, a, mx_port) for a in await _addresses(host, resolver)]
        except NXDomain:
            continue
        except DnsTempError as exc:
            temp.append(str(exc))
    if hops:
        return hops
    if temp:
        raise DnsTempError("; ".join(temp))
    raise NoRoute("5.4.4", f"no address for the mail servers of {domain}")
