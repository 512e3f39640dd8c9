"""MTA-STS (RFC 8461) for outbound mail: a destination that publishes a policy in ``enforce`` mode
is reached only at the MX hosts the policy names and over TLS with a certificate that verifies
for that host; otherwise its mail waits (a temporary failure), never downgraded.

The policy is announced by a TXT record ``_mta-sts.<domain>`` ("v=STSv1; id=…") and fetched from
``https://mta-sts.<domain>/.well-known/mta-sts.txt`` (certificate verified, no redirects, 64 KiB at
most). Policies are cached for their ``max_age`` and fetched again when the TXT id changes; a
failed fetch keeps using the cached policy (RFC 8461 5.1). The cache is in memory: after a restart
policies are fetched again. Parsing and matching are pure functions.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import http.client
import logging
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Callable, Sequence

from smtp.outbound.dns import DnsError, Resolver

log = logging.getLogger("smtp.outbound.mtasts")

MAX_POLICY = 64 * 1024  # RFC 8461 3.3: senders may limit the policy size (64 KiB suggested)
_TXT_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


@dataclass(frozen=True, slots=True)
class Policy:
    mode: str  # "enforce", "testing" or "none"
    mx: tuple[str, ...]  # host patterns, "*.example.org" matches one label
    max_age: int
    id: str = ""  # the TXT record's id it was fetched for


def parse_txt(records: Sequence[bytes]) -> str | None:
    """The policy id of the ``_mta-sts`` TXT records, or None (no record, several, or malformed)."""
    found = [r for r in records if r.startswith(b"v=STSv1")]
    if len(found) != 1:
        return None
    fields = dict(
        part.strip().partition("=")[::2] for part in found[0].decode("ascii", "replace").split(";") if part.strip()
    )
    ident = fields.get("id", "").strip()
    return ident if fields.get("v") == "STSv1" and _TXT_ID.match(ident) else None


def parse_policy(text: str, ident: str = "") -> Policy:
    """RFC 8461 3.2 policy body (``key: value`` lines); ``ValueError`` names what is wrong."""
    values: dict[str, list[str]] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"policy line without ':': {line[:60]!r}")
        values.setdefault(key.strip().lower(), []).append(value.strip())
    if values.get("version") != ["STSv1"]:
        raise ValueError("policy version is not STSv1")
    mode = (values.get("mode") or [""])[0]
    if mode not in ("enforce", "testing", "none"):
        raise ValueError(f"policy mode {mode!r} is not enforce, testing or none")
    try:
        max_age = int((values.get("max_age") or [""])[0])
    except ValueError:
        raise ValueError("policy max_age is not a number") from None
    mx = tuple(m.lower().rstrip(".") for m in values.get("mx", []))
    if mode != "none" and not mx:
        raise ValueError("policy names no mx")
    return Policy(mode, mx, max(0, min(max_age, 31557600)), ident)


def mx_matches(host: str, patterns: Sequence[str]) -> bool:
    """RFC 8461 4.1: an exact name, or "*.example.org" standing for exactly one leftmost label."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            label, _, rest = host.partition(".")
            if label and rest == pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


class _Pinned(http.client.HTTPSConnection):
    """HTTPS to ``host`` at an address our resolver gave (the name still checked by TLS)."""

    def __init__(self, host: str, address: str, port: int, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def fetch(domain: str, address: str, *, port: int, context: ssl.SSLContext, timeout: float) -> str:
    """The policy text of ``domain`` (blocking: run in a thread). ``OSError``/``ValueError`` on failure."""
    host = f"mta-sts.{domain}"
    conn = _Pinned(host, address, port, context, timeout)
    try:
        conn.request("GET", "/.well-known/mta-sts.txt", headers={"Host": host, "User-Agent": "mailserver-mta-sts"})
        response = conn.getresponse()
        if response.status != 200:  # RFC 8461 3.3: no redirects, only 200
            raise ValueError(f"HTTP {response.status}")
        kind = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "text/plain":
            raise ValueError(f"Content-Type {kind!r} is not text/plain")
        body = response.read(MAX_POLICY + 1)
        if len(body) > MAX_POLICY:
            raise ValueError("policy larger than 64 KiB")
        return body.decode("utf-8")
    finally:
        conn.close()


class PolicyCache:
    """Policies by domain, with their expiry; looked up once per destination run."""

    def __init__(self, resolver: Resolver, context: ssl.SSLContext, *, port: int = 443, timeout: float = 10.0,
                 clock: Callable[[], _dt.datetime] | None = None) -> None:  # fmt: skip
        self.resolver = resolver
        self.context = context
        self.port = port
        self.timeout = timeout
        self.clock = clock or (lambda: _dt.datetime.now(_dt.UTC))
        self._cache: dict[str, tuple[Policy, _dt.datetime]] = {}
        self.fetches = 0  # policies fetched over HTTPS (observability, tests)

    async def policy(self, domain: str) -> Policy | None:
        domain = domain.lower().rstrip(".")
        now = self.clock()
        cached = self._cache.get(domain)
        if cached is not None and cached[1] <= now:
            del self._cache[domain]
            cached = None
        try:
            ident = parse_txt(await self.resolver.txt(f"_mta-sts.{domain}"))
        except DnsError:
            ident = None
        if ident is None:
            return cached[0] if cached else None  # no record now: a cached policy still holds (RFC 8461 5.1)
        if cached is not None and cached[0].id == ident:
            return cached[0]
        try:
            addresses = await self.resolver.a(f"mta-sts.{domain}")
            if not addresses:
                raise ValueError(f"mta-sts.{domain} has no address")
            self.fetches += 1
            text = await asyncio.get_running_loop().run_in_executor(
                None, lambda: fetch(domain, addresses[0], port=self.port, context=self.context, timeout=self.timeout)
            )
            policy = parse_policy(text, ident)
        except (OSError, ValueError, UnicodeError, http.client.HTTPException, DnsError) as exc:
            log.warning("MTA-STS policy of %s not fetched: %s", domain, exc)
            return cached[0] if cached else None
        self._cache[domain] = (policy, now + _dt.timedelta(seconds=policy.max_age))
        log.info("MTA-STS policy of %s: mode=%s mx=%s", domain, policy.mode, ",".join(policy.mx))
        return policy
