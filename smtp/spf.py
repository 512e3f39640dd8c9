"""SPF (RFC 7208) check_host() over our Resolver (R-SEC-2: verify the origin of incoming mail).

A small evaluator rather than pyspf, because every look-up must go through the one async
``Resolver`` (static answers in tests and air-gapped sites). Implemented: all, include, a, mx,
ptr, ip4, ip6, exists; redirect=; macros (section 7) with transformers; the 10-look-up and
2-void-look-up limits (4.6.4). ``exp=`` is not fetched (we never reject with its text).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

from smtp.outbound.dns import DnsTempError, NXDomain, Resolver

PASS, FAIL, SOFTFAIL, NEUTRAL = "pass", "fail", "softfail", "neutral"
NONE, PERMERROR, TEMPERROR = "none", "permerror", "temperror"
_QUALIFIERS = {"+": PASS, "-": FAIL, "~": SOFTFAIL, "?": NEUTRAL}
_MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
_MACRO = re.compile(r"%\{([slodiphcrtv])(\d*)(r?)([.\-+,/_=]*)\}|%%|%_|%-|%")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$", re.IGNORECASE)


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class SpfResult:
    result: str
    domain: str  # the domain checked (MAIL FROM's, or HELO's for the null sender)
    reason: str = ""


def _valid_domain(domain: str) -> bool:
    labels = domain.rstrip(".").split(".")
    return len(labels) >= 2 and all(_LABEL.match(label) for label in labels) and len(domain) <= 253


@functools.lru_cache(maxsize=4096)
def _client_ip(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The client's address (IPv4-mapped IPv6 as IPv4); parsed once per address, not per message."""
    parsed = ipaddress.ip_address(ip)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped:
        return parsed.ipv4_mapped
    return parsed


class _Check:
    def __init__(self, ip: str, sender: str, helo: str, resolver: Resolver) -> None:
        self.ip = _client_ip(ip)
        self.sender = sender
        self.helo = helo
        self.resolver = resolver
        self.lookups = 0
        self.voids = 0

    def _count(self) -> None:
        self.lookups += 1
        if self.lookups > 10:
            raise _PermError("more than 10 DNS look-ups")

    def _void(self, answer: list) -> list:
        if not answer:
            self.voids += 1
            if self.voids > 2:
                raise _PermError("more than 2 void look-ups")
        return answer

    async def _a(self, name: str) -> list[str]:
        try:
            return self._void(await self.resolver.a(name))
        except NXDomain:
            return self._void([])
        except DnsTempError as exc:
            raise _TempError(str(exc)) from None

    async def check_host(self, domain: str, depth: int = 0) -> str:
        if depth > 10:
            raise _PermError("include/redirect loop")
        if not _valid_domain(domain):
            return NONE
        try:
            records = [t for t in await self.resolver.txt(domain) if t.lower() == b"v=spf1" or t.lower().startswith(b"v=spf1 ")]
        except NXDomain:
            return NONE
        except DnsTempError as exc:
            raise _TempError(str(exc)) from None
        if not records:
            return NONE
        if len(records) > 1:
            raise _PermError(f"{domain} has {len(records)} SPF records")
        try:
            terms = records[0].decode("ascii").split()[1:]
        except UnicodeDecodeError:
            raise _PermError("non-ASCII SPF record") from None
        redirect = None
        for term in terms:
            name, eq, value = term.partition("=")
            if eq and re.match(r"^[a-z][a-z0-9_.-]*$", name, re.IGNORECASE) and ":" not in name and "/" not in name:
                if name.lower() == "redirect":
                    if redirect is not None:
                        raise _PermError("two redirect modifiers")
                    redirect = value
                continue  # exp= and unknown modifiers are ignored (6.2, 6)
            qualifier = _QUALIFIERS.get(term[0])
            if qualifier:
                term = term[1:]
            else:
                qualifier = PASS
            if await self._mechanism(term, domain, depth):
                return qualifier
        if redirect is not None:
            self._count()
            target = self.expand(redirect, domain)
            result = await self.check_host(target, depth + 1)
            if result == NONE:
                raise _PermError(f"redirect to {target} without SPF record")
            return result
        return NEUTRAL

    async def _mechanism(self, term: str, domain: str, depth: int) -> bool:
        m = re.match(r"^([a-z0-9]+)(?::([^/]*))?((?:/\d+)?(?://\d+)?)$", term, re.IGNORECASE)
        if not m or m.group(1).lower() not in _MECHANISMS:
            raise _PermError(f"unknown mechanism {term!r}")
        kind, arg, cidr = m.group(1).lower(), m.group(2), m.group(3) or ""
        single = re.match(r"^/(\d+)", cidr)
        dual = re.search(r"//(\d+)$", cidr)
        if kind == "ip6":
            c4, c6 = 32, int(single.group(1)) if single else 128
        else:
            c4, c6 = int(single.group(1)) if single else 32, int(dual.group(1)) if dual else 128
        if c4 > 32 or c6 > 128 or (kind == "ip6" and dual) or (kind == "ip4" and dual):
            raise _PermError(f"bad prefix length in {term!r}")
        if kind == "all":
            return True
        if kind in ("ip4", "ip6"):
            try:
                base = ipaddress.ip_address(arg or "")
                net = ipaddress.ip_network(f"{base}/{c4 if kind == 'ip4' else c6}", strict=False)
            except ValueError:
                raise _PermError(f"bad network in {term!r}") from None
            if net.version != (4 if kind == "ip4" else 6):
                raise _PermError(f"bad network in {term!r}")
            return self.ip.version == net.version and self.ip in net
        target = self.expand(arg, domain) if arg else domain
        if kind == "include":
            if not arg:
                raise _PermError("include without a domain")
            self._count()
            result = await self.check_host(target, depth + 1)
            if result == PASS:
                return True
            if result == NONE:
                raise _PermError(f"include of {target} without SPF record")
            return False
        if kind == "a":
            self._count()
            return self._in(await self._a(target), c4, c6)
        if kind == "mx":
            self._count()
            try:
                hosts = self._void(await self.resolver.mx(target))
            except NXDomain:
                hosts = self._void([])
            except DnsTempError as exc:
                raise _TempError(str(exc)) from None
            if len(hosts) > 10:
                raise _PermError("more than 10 MX names")
            for _pref, host in hosts:
                if host and self._in(await self._a(host), c4, c6):
                    return True
            return False
        if kind == "ptr":
            self._count()
            for name in (await self.resolver.ptr(str(self.ip)))[:10]:
                if (name == target or name.endswith("." + target)) and str(self.ip) in await self._a(name):
                    return True
            return False
        self._count()  # exists
        return bool(await self._a(target))

    def _in(self, addresses: list[str], c4: int, c6: int) -> bool:
        for text in addresses:
            addr = ipaddress.ip_address(text)
            if addr.version == self.ip.version:
                net = ipaddress.ip_network(f"{addr}/{c4 if addr.version == 4 else c6}", strict=False)
                if self.ip in net:
                    return True
        return False

    def expand(self, spec: str, domain: str) -> str:
        """Macro expansion (RFC 7208 section 7)."""
        local, _, sender_domain = self.sender.rpartition("@")
        values = {
            "s": self.sender, "l": local or "postmaster", "o": sender_domain or self.helo, "d": domain,
            "i": self._dotted_ip(), "p": "unknown", "v": "in-addr" if self.ip.version == 4 else "ip6",
            "h": self.helo, "c": str(self.ip), "r": "unknown", "t": "0",
        }  # fmt: skip

        def one(m: re.Match) -> str:
            token = m.group(0)
            if token == "%%":
                return "%"
            if token == "%_":
                return " "
            if token == "%-":
                return "%20"
            if token == "%":
                raise _PermError(f"bad macro in {spec!r}")
            value = values[m.group(1).lower()]
            delims = m.group(4) or "."
            parts = re.split("[" + re.escape(delims) + "]", value)
            if m.group(3):
                parts.reverse()
            if m.group(2):
                keep = int(m.group(2))
                if keep == 0:
                    raise _PermError("macro digit 0")
                parts = parts[-keep:]
            return ".".join(parts)

        return _MACRO.sub(one, spec).rstrip(".")

    def _dotted_ip(self) -> str:
        if self.ip.version == 4:
            return str(self.ip)
        return ".".join(self.ip.exploded.replace(":", ""))


async def check_spf(ip: str, sender: str, helo: str, resolver: Resolver) -> SpfResult:
    """SPF result for a client at ``ip`` sending as ``sender`` (MAIL FROM; "" = null sender, then
    the HELO identity is checked, RFC 7208 2.4)."""
    domain = sender.rpartition("@")[2] if "@" in sender else helo
    domain = domain.lower().rstrip(".")
    check = _Check(ip, sender if "@" in sender else f"postmaster@{helo}", helo, resolver)
    try:
        return SpfResult(await check.check_host(domain), domain)
    except _PermError as exc:
        return SpfResult(PERMERROR, domain, str(exc))
    except _TempError as exc:
        return SpfResult(TEMPERROR, domain, str(exc))
