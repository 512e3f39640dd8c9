"""Flags as stored: system flags in a bit mask, keywords in a padded text column."""

from __future__ import annotations

from storage.api import SYSTEM_FLAGS
from storage.errors import Invalid

BITS = {name.lower(): 1 << i for i, name in enumerate(SYSTEM_FLAGS)}
NAMES = {1 << i: name for i, name in enumerate(SYSTEM_FLAGS)}
_ATOM_SPECIALS = set('(){ %*"\\]') | {chr(c) for c in range(0, 32)} | {chr(127)}


def split(flags: frozenset[str] | set[str]) -> tuple[int, set[str]]:
    """Split into (bit mask, keywords). Unknown backslash flags are refused (RFC 3501)."""
    mask = 0
    keywords: set[str] = set()
    for flag in flags:
        bit = BITS.get(flag.lower())
        if bit is not None:
            mask |= bit
        elif flag.startswith("\\"):
            if flag.lower() == "\\recent":
                continue  # session state, never stored
            raise Invalid(f"unknown system flag {flag}")
        elif not flag or any(c in _ATOM_SPECIALS or ord(c) > 126 for c in flag):
            raise Invalid(f"invalid keyword {flag!r}")
        else:
            keywords.add(flag)
    return mask, keywords


def join(mask: int, keywords: str) -> frozenset[str]:
    names = [name for bit, name in NAMES.items() if mask & bit]
    names.extend(keywords.split())
    return frozenset(names)


def pack_keywords(keywords: set[str]) -> str:
    return (" " + " ".join(sorted(keywords)) + " ") if keywords else ""
