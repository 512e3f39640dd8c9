"""Search and sort contexts (RFC 5267 §4, CONTEXT=SEARCH and CONTEXT=SORT): what a
``SEARCH/SORT RETURN (UPDATE …)`` asked to be kept current, and the pure arithmetic of its
``ESEARCH (TAG …) ADDTO/REMOVEFROM`` updates.

A context holds its result as UIDs in the requested order (mailbox order for SEARCH): numbers
are rendered per update, as the client knows them at that moment, so expunges need no
renumbering here. SORT keys are properties of a message that never change (RFC 5256 §3), so
the messages that stay in a sorted result keep their relative order and every update is a
removal or an insertion, never a move.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

#: updating contexts a session may hold; one more is refused with NOUPDATE (RFC 5267 §4.3.1:
#: at least one MUST be provided)
MAX_CONTEXTS = 32


@dataclass(eq=False)
class Context:
    tag: bytes
    uid: bool  # UID SEARCH/SORT: updates name UIDs (RFC 5267 §4.3.2), else sequence numbers
    query: object  # the search tree as parsed (\\Recent and keywords resolved per evaluation)
    keys: list | None  # SORT keys, or None for SEARCH
    result: list[int]  # UIDs as the client holds them, in the requested order
    fresh: list[int] | None = field(default=None)  # the store's latest evaluation, not yet told


def number_list(nums: list[int]) -> bytes:
    """A sequence-set in the given order (ESORT's ALL keeps the sort order, RFC 5267 §3.2):
    ascending runs as ranges ("4:8"), as Dovecot writes them, everything else one by one."""
    parts: list[bytes] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(b"%d:%d" % (nums[i], nums[j]) if j > i else b"%d" % nums[i])
        i = j + 1
    return b",".join(parts)


Pair = tuple[int, list[int]]  # (context position, UIDs in the requested order)


def sorted_changes(old: list[int], new: list[int]) -> tuple[list[Pair], list[Pair]]:
    """REMOVEFROM and ADDTO pairs turning ``old`` into ``new`` (RFC 5267 §4.3.3–4.3.4), applied
    in that order: removals at their position at the time each is applied, then insertions at
    their final position. Runs at consecutive positions share one pair. The members of ``old``
    that stay must keep their relative order in ``new`` (true of sort keys)."""
    keep = set(new)
    removals: list[Pair] = []
    pos = 0  # 0-based position in the list as it is after the removals so far
    for uid in old:
        if uid in keep:
            pos += 1
        elif removals and removals[-1][0] == pos + 1:
            removals[-1][1].append(uid)  # the next one slid into the same position
        else:
            removals.append((pos + 1, [uid]))
    had = set(old)
    additions: list[Pair] = []
    for i, uid in enumerate(new):
        if uid in had:
            continue
        last = additions[-1] if additions else None
        if last is not None and last[0] + len(last[1]) == i + 1:
            last[1].append(uid)
        else:
            additions.append((i + 1, [uid]))
    return removals, additions


def search_changes(old: list[int], new: list[int]) -> tuple[list[int], list[int]]:
    """(removed, added) UIDs, ascending: a SEARCH context's updates use position 0 and mailbox
    order, which gives the shortest sequence-set (RFC 5267 §4.3.3, RECOMMENDED)."""
    a, b = set(old), set(new)
    return sorted(a - b), sorted(b - a)


def render(ctx: Context, item: bytes, pairs: list[Pair], number: Callable[[int], int]) -> bytes:
    """One ESEARCH response carrying ``item`` (ADDTO or REMOVEFROM) pairs, numbers as the client
    knows them (``number``: UID → its number for this context)."""
    head = b'* ESEARCH (TAG "%s")' % ctx.tag + (b" UID" if ctx.uid else b"")
    body = b" ".join(b"%d %s" % (pos, number_list([number(u) for u in uids])) for pos, uids in pairs)
    return head + b" %s (%s)" % (item, body)


def update_lines(ctx: Context, new: list[int], number: Callable[[int], int]) -> list[bytes]:
    """The ESEARCH updates that bring the client from ``ctx.result`` to ``new`` (and record it)."""
    out = []
    if ctx.keys is None:
        removed, added = search_changes(ctx.result, new)
        if removed:
            out.append(render(ctx, b"REMOVEFROM", [(0, sorted(map(number, removed)))], int))
        if added:
            out.append(render(ctx, b"ADDTO", [(0, sorted(map(number, added)))], int))
    else:
        removals, additions = sorted_changes(ctx.result, new)
        if removals:
            out.append(render(ctx, b"REMOVEFROM", removals, number))
        if additions:
            out.append(render(ctx, b"ADDTO", additions, number))
    ctx.result = list(new)
    return out
