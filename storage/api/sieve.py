"""Value types of the Sieve role (``store.sieve``): an account's filter scripts (RFC 5228)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SieveScript:
    name: str
    active: bool
    size: int  # octets of the UTF-8 content (ManageSieve quotas count octets)
