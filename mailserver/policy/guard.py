"""Login guessing policy (R-SEC-1): how long a client waits, and when it is refused outright.

Pure functions over counts of failed logins, used by the login guard (mailserver/accounts/guard.py)
for IMAP, POP3, submission and the portal alike. Two tallies count failures: one per client
address (an IPv4 /32, an IPv6 /64: one host gets a whole /64 and would otherwise rotate through
it) and one per account name as typed.

- The address's failures delay its next answer, whatever it tries: 0, then ``delay_first``
  doubling to ``delay_max`` (Dovecot's auth penalty). Past ``block_after`` failures the address
  is refused for ``block_seconds`` without its password being checked.
- The account's failures (from any number of addresses) delay the *failure* answers to that
  account the same way. The right password from a clean address is answered at once: a botnet
  guessing at an account slows itself down but never locks out the owner.
- A tally is forgotten ``forget_after`` seconds after its last failure.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from dataclasses import dataclass

#: an account name is kept to this length in the tallies and the log
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class GuardRules:
    delay_first: float = 2.0
    delay_max: float = 15.0
    block_after: int = 10
    block_seconds: float = 900.0
    forget_after: float = 3600.0


@dataclass(frozen=True, slots=True)
class Tally:
    """Failures counted under one key and the time (epoch seconds) of the last one."""

    failures: int
    last: float


def client_key(host: str) -> str:
    """The key an address's failures are counted under: the IPv4 address, or the /64 of an IPv6
    one (an IPv4-mapped IPv6 address counts as the IPv4 one). Anything else is kept as given."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host[:64]
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        return str(mapped)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def account_key(typed: str) -> str:
    """The key an account name's failures are counted under: NFC, lower case, trimmed."""
    return unicodedata.normalize("NFC", typed).strip().lower()[:MAX_NAME]


def current(tally: Tally | None, now: float, rules: GuardRules) -> int:
    """The failures that still count at ``now`` (none once the tally is forgotten)."""
    if tally is None or now - tally.last >= rules.forget_after:
        return 0
    return tally.failures


def penalty(failures: int, rules: GuardRules) -> float:
    """Seconds of delay after ``failures`` failures: 0, delay_first, doubling, capped."""
    if failures <= 0 or rules.delay_first <= 0:
        return 0.0
    return min(rules.delay_max, rules.delay_first * 2.0 ** min(failures - 1, 64))


def blocked_for(address: Tally | None, now: float, rules: GuardRules) -> float:
    """Seconds the address is still refused without a password check; 0 when it is not."""
    if current(address, now, rules) < rules.block_after:
        return 0.0
    assert address is not None
    return max(0.0, address.last + rules.block_seconds - now)


def delay_before(address: Tally | None, now: float, rules: GuardRules) -> float:
    """Seconds to wait before checking a login from this address."""
    return penalty(current(address, now, rules), rules)


def delay_failure(account_failures: int, waited: float, rules: GuardRules) -> float:
    """Extra seconds before answering a failed login, given the account's failures including
    this one and what the client already waited: its answer comes no sooner than the account's
    penalty."""
    return max(0.0, penalty(account_failures, rules) - waited)


def is_trusted(host: str, networks) -> bool:
    """Whether the address ``host`` is in one of ``networks`` (``ipaddress`` networks); an
    IPv4-mapped IPv6 address counts as the IPv4 one, a name or garbage is never trusted."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    return any(address in net for net in networks if net.version == address.version)
