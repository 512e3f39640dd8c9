"""Value types of the Sieve role (``store.sieve``): an account's filter scripts (RFC 5228)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SieveScript:
    name: str
    active: bool
    size: int  # octets of the UTF-8 content (ManageSieve quotas count octets)


@dataclass(frozen=True, slots=True)
class Forward:
    """Where a personal account's mail is forwarded; ``keep``: a local copy as well."""

    targets: tuple[str, ...]
    keep: bool
