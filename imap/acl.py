"""RFC 4314 rights letters ↔ our unit-mailbox rights (storage.api.Right): a pure mapping.

Our model is coarser than RFC 4314, so letters come in groups that are granted together:

=========  =================  ==========================================================
letters    Right              what it allows
=========  =================  ==========================================================
``lr``     READ               see the folders (LIST), SELECT/EXAMINE, FETCH, SEARCH, COPY out
``sw``     WRITE_FLAGS        STORE \\Seen and the other flags (not \\Deleted)
``te``     DELETE             STORE \\Deleted, EXPUNGE, MOVE out
``0``      SEND_AS            submission with the unit's address as sender (site right, §2.1)
``ikxa``   (head only)        APPEND/COPY into, CREATE/RENAME/DELETE folders, change the ACL
=========  =================  ==========================================================

``p`` (post) is never granted: mail reaches a unit mailbox through SMTP. The obsolete ``c`` and
``d`` (RFC 4314 §2.1.1) are shown beside ``k`` and ``te``; in SETACL ``d`` stands for ``te``
and ``c`` for ``k`` (head only, so refused for a delegate).
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.api import Right

#: the groups a delegate may hold, each all or nothing (LISTRIGHTS shows them)
GROUPS: dict[str, Right] = {"lr": Right.READ, "sw": Right.WRITE_FLAGS, "te": Right.DELETE, "0": Right.SEND_AS}
#: what only the owner or the unit's head holds
HEAD_ONLY = "ikxa"
#: every letter we know: standard (RFC 4314 §2.1), obsolete (§2.1.1) and our site right
KNOWN = set("lrswipkxtecda0")
#: RIGHTS= capability: the RFC 4314 rights beyond RFC 2086 that we implement
RIGHTS_CAPABILITY = b"RIGHTS=texk"


class Unexpressible(ValueError):
    """Rights our model cannot hold for that identifier; the text says why (shown to the client)."""


@dataclass(frozen=True, slots=True)
class Change:
    mode: str  # "set", "add" or "remove"
    rights: frozenset[Right]


def letters(rights, *, head: bool) -> str:
    """The rights string for MYRIGHTS/GETACL/LIST-MYRIGHTS, in RFC 4314's order."""
    held = set()
    for group, right in GROUPS.items():
        if right in rights:
            held.update(group)
    if head:
        held.update(HEAD_ONLY + "c")
    if {"t", "e"} <= held:
        held.add("d")
    return "".join(c for c in "lrswipkxtecda0" if c in held)


def owner_letters() -> str:
    return letters(frozenset(Right), head=True)


def parse_change(text: str) -> Change:
    """A SETACL rights argument (``+lr``, ``-te``, ``lrsw``) → the Rights it sets, adds or
    removes. Every letter must complete its group; head-only and unknown letters are refused."""
    mode = "set"
    if text[:1] in ("+", "-"):
        mode, text = ("add" if text[0] == "+" else "remove"), text[1:]
    wanted = set(text)
    unknown = wanted - KNOWN
    if unknown:
        raise Unexpressible(f"Unknown rights {''.join(sorted(unknown))}")
    if "d" in wanted:
        wanted.discard("d")
        wanted.update("te")
    refused = wanted & set(HEAD_ONLY + "cp")
    if refused:
        raise Unexpressible(
            f"Rights {''.join(sorted(refused))} belong to the head of the unit alone and cannot be delegated")
    rights = set()
    for group, right in GROUPS.items():
        part = wanted & set(group)
        if part and part != set(group):
            raise Unexpressible(f"Rights {group} go together: grant or remove both")
        if part:
            rights.add(right)
    return Change(mode, frozenset(rights))


def apply_change(current: frozenset[Right], change: Change) -> frozenset[Right]:
    if change.mode == "add":
        return current | change.rights
    if change.mode == "remove":
        return current - change.rights
    return change.rights


def listrights_groups() -> list[str]:
    """LISTRIGHTS for a delegate: nothing is always granted, then each group on its own."""
    return ["", *GROUPS]
