"""Flags as stored: system flags in a bit mask, keywords in a padded text column."""

from __future__ import annotations

from storage.api import SYSTEM_FLAGS
from storage.errors import Invalid

BITS = {name.lower(): 1 << i for i, name in enumerate(SYSTEM_FLAGS)}
NAMES = {1 << i: name for i, name in enumerate(SYSTEM_FLAGS)}
_ATOM_SPECIALS = set('(){ %*"\\]') | {chr(c) for c in range(0, 32)} | {chr(127)}


def split(flags: frozenset[str] | set[str]) -> tuple[int, set[str]]:
    """Split into (bit mask, keywords). Unknown backslash flags are refused (RFC 3501).

    Keywords are case-insensitive (RFC 3501 §9, RFC 9051 §2.3.2): of two spellings of one
    keyword the first given is kept."""
    mask = 0
    keywords: set[str] = set()
    seen: set[str] = set()
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
        elif flag.lower() not in seen:
            seen.add(flag.lower())
            keywords.add(flag)
    return mask, keywords


def spelled(keywords: set[str], known) -> set[str]:
    """``keywords`` spelled as the mailbox already spells them (``known``: its keywords)."""
    spelling = {k.lower(): k for k in known}
    return {spelling.get(k.lower(), k) for k in keywords}


def mailbox_keywords(packed_values) -> list[str]:
    """The keywords of a mailbox from the distinct packed keyword columns of its messages, one
    spelling each (the smallest, should old data hold two), sorted."""
    out: dict[str, str] = {}
    for packed in packed_values:
        for k in packed.split():
            if k.lower() not in out or k < out[k.lower()]:
                out[k.lower()] = k
    return sorted(out.values())


def join(mask: int, keywords: str) -> frozenset[str]:
    names = [name for bit, name in NAMES.items() if mask & bit]
    names.extend(keywords.split())
    return frozenset(names)


def pack_keywords(keywords: set[str]) -> str:
    return (" " + " ".join(sorted(keywords)) + " ") if keywords else ""
