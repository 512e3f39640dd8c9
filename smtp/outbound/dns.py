"""The one DNS resolver of the mail server: MX/A/AAAA for outbound routing, TXT for SPF and DKIM.

Everything that looks something up takes a ``Resolver``; tests and air-gapped agencies give it
fixed answers (config ``dns.static``, ``dns.static_only``), so no test needs the network.

Errors are typed because they decide the fate of a message: ``NXDomain`` is permanent (the domain
does not exist), ``DnsTempError`` is temporary (retry later). "No records of that type" is an
empty list.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Mapping, Sequence

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.nameserver
import dns.resolver

log = logging.getLogger("smtp.outbound.dns")


class DnsError(Exception):
    pass


class NXDomain(DnsError):
    """The name does not exist."""


class DnsTempError(DnsError):
    """Timeout, SERVFAIL, no nameserver answered: try again later."""


def _name(name: str) -> str:
    return name.strip().lower().rstrip(".")


class Resolver:
    """Async look-ups with dnspython, after the static answers.

    ``static`` maps a name to ``{"mx": ["10 mx.example"], "a": ["192.0.2.1", "2001:db8::1"],
    "txt": ["v=spf1 -all"]}``. A name listed there is answered only from there (a missing type
    means no records); with ``static_only`` an unlisted name does not exist.
    """

    def __init__(
        self,
        static: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
        *,
        static_only: bool = False,
        nameservers: Sequence[str] = (),
        timeout: float = 5.0,
    ) -> None:
        self.static = {_name(k): {t.lower(): list(v) for t, v in rr.items()} for k, rr in (static or {}).items()}
        self.static_only = static_only
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._nameservers = list(nameservers)
        self._timeout = timeout

    @classmethod
    def from_settings(cls, dns_settings) -> "Resolver":
        """From ``config.settings.Dns``."""
        return cls(
            dns_settings.static, static_only=dns_settings.static_only,
            nameservers=dns_settings.nameservers, timeout=dns_settings.timeout,
        )  # fmt: skip

    def _static(self, name: str, rtype: str) -> list[str] | None:
        entry = self.static.get(_name(name))
        if entry is not None:
            return list(entry.get(rtype, []))
        if self.static_only:
            raise NXDomain(name)
        return None

    def _dns(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            self._resolver = dns.asyncresolver.Resolver(configure=not self._nameservers)
            if self._nameservers:
                self._resolver.nameservers = [_nameserver(n) for n in self._nameservers]
            # Ask for the AD bit (RFC 6840 5.7): DANE trusts the validating resolver's word (RFC 7672)
            self._resolver.flags = dns.flags.RD | dns.flags.AD
            self._resolver.lifetime = self._timeout
            # Answers are kept for their TTL: every inbound message asks for its sender's SPF
            # record, and a busy MX sees the same few domains all day.
            self._resolver.cache = dns.resolver.Cache()
        return self._resolver

    async def _query(self, name: str, rtype: str) -> list:
        try:
            answer = await self._dns().resolve(_name(name) + ".", rtype, search=False)
        except dns.resolver.NXDOMAIN:
            raise NXDomain(name) from None
        except dns.resolver.NoAnswer:
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout) as exc:
            raise DnsTempError(f"{rtype} {name}: {exc}") from None
        except dns.exception.DNSException as exc:  # malformed names and answers
            raise DnsTempError(f"{rtype} {name}: {exc}") from None
        return list(answer)

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        """MX records sorted by preference: [(10, "mx1.example.org"), …]; [] when none.
        A null MX (RFC 7505) is returned as [(0, "")]."""
        fixed = self._static(domain, "mx")
        if fixed is not None:
            pairs = []
            for item in fixed:
                pref, _, host = item.strip().partition(" ")
                pairs.append((int(pref), _name(host)))
        else:
            pairs = [(r.preference, _name(r.exchange.to_text())) for r in await self._query(domain, "MX")]
        return sorted(pairs, key=lambda p: p[0])

    async def a(self, name: str) -> list[str]:
        """IPv4 and IPv6 addresses of ``name`` (IPv4 first); [] when none."""
        fixed = self._static(name, "a")
        if fixed is not None:
            return sorted({str(ipaddress.ip_address(x)) for x in fixed}, key=lambda x: (":" in x, x))
        addresses: list[str] = []
        found = False
        for rtype in ("A", "AAAA"):
            try:
                addresses += [r.to_text() for r in await self._query(name, rtype)]
                found = True
            except NXDomain:
                raise
            except DnsTempError:
                if rtype == "A":
                    raise
                # an AAAA failure with A answers still lets us deliver over IPv4
        return addresses if found else []

    async def tlsa(self, name: str) -> tuple[list[str], bool]:
        """TLSA records of ``name`` ("3 1 1 <hex>") and whether the answer was DNSSEC-validated
        (AD bit; static answers are the operator's and count as validated). ([], False) when none."""
        try:
            fixed = self._static(name, "tlsa")
        except NXDomain:
            return [], False
        if fixed is not None:
            return fixed, bool(fixed)
        try:
            answer = await self._dns().resolve(_name(name) + ".", "TLSA", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return [], False
        except dns.exception.DNSException as exc:
            raise DnsTempError(f"TLSA {name}: {exc}") from None
        secure = bool(answer.response.flags & dns.flags.AD)
        return [r.to_text() for r in answer], secure

    async def txt(self, name: str) -> list[bytes]:
        """Each TXT record's strings joined (RFC 7208 3.3, RFC 6376 3.6.2.2); [] when none."""
        fixed = self._static(name, "txt")
        if fixed is not None:
            return [x.encode() for x in fixed]
        return [b"".join(r.strings) for r in await self._query(name, "TXT")]

    async def ptr(self, ip: str) -> list[str]:
        """Reverse names of ``ip`` (SPF ``ptr``, trace headers); [] when none or on error."""
        rev = _name(ipaddress.ip_address(ip).reverse_pointer)
        entry = self.static.get(rev)
        if entry is not None or self.static_only:
            return [_name(x) for x in (entry or {}).get("ptr", [])]
        try:
            return [_name(r.to_text()) for r in await self._query(rev, "PTR")]
        except DnsError:
            return []


def _nameserver(value: str):
    """``192.0.2.53``, ``192.0.2.53:5353`` or ``[2001:db8::53]:5353`` (a port for tests and
    local resolvers on another port)."""
    if value.startswith("["):
        host, _, port = value[1:].partition("]")
        return dns.nameserver.Do53Nameserver(host, int(port[1:]) if port.startswith(":") else 53)
    if value.count(":") == 1:
        host, port = value.split(":")
        return dns.nameserver.Do53Nameserver(host, int(port))
    return value
