"""SEARCH (RFC 3501, ESEARCH RFC 4731 result options, CONDSTORE MODSEQ, PARTIAL RFC 9394), SORT
(RFC 5256, ESORT RFC 5267), their updating contexts (RFC 5267 §4: RETURN (UPDATE), CANCELUPDATE;
imap/contexts.py) and THREAD (RFC 5256 §3, imap/thread.py).

Both run on the indexes the store keeps at delivery (``store.search.search`` / ``store.search.sort``); the
session only turns sequence numbers into UIDs and back, and resolves \\Recent.
"""

from __future__ import annotations

import re
from dataclasses import replace

from twisted.internet.defer import DeferredLock
from twisted.internet.threads import deferToThread

from imap import contexts, thread
from imap.access import authorize
from imap.contexts import number_list as _number_list
from imap.searchparse import CHARSETS, BadCharset, SearchParser
from imap.session import format_set
from imap.state import Session
from imap.wire import Atom, ParseError, String
from storage.search import And, HasFlag, Not, Or, SortKey, UidSet

OK = b"OK"
RETURN_OPTIONS = {b"MIN", b"MAX", b"COUNT", b"ALL", b"SAVE",
    b"CONTEXT", b"UPDATE",  # RFC 5267 §4.2 (a hint: every result is computed afresh), §4.3
}
SORT_KEYS = {b"ARRIVAL": "arrival", b"CC": "cc", b"DATE": "date", b"FROM": "from", b"SIZE": "size", b"SUBJECT": "subject", b"TO": "to",
    b"DISPLAYFROM": "displayfrom", b"DISPLAYTO": "displayto",  # RFC 5957 SORT=DISPLAY
}


def resolve_recent(q, recent: set[int], keywords: dict[str, str] | None = None):
    """\\Recent belongs to the session (storage.search.HasFlag says so): turn it into UIDs.
    A keyword is spelled as the mailbox spells it (``keywords``: lower case → spelling), since
    keywords are case-insensitive (RFC 3501 §9) and the store matches the stored spelling."""
    from imap.session import compress

    if isinstance(q, HasFlag) and q.flag == "\\Recent":
        uids = UidSet(compress(sorted(recent)))
        return uids if q.present else Not(uids)
    if isinstance(q, HasFlag) and keywords and not q.flag.startswith("\\"):
        return replace(q, flag=keywords.get(q.flag.lower(), q.flag))
    if isinstance(q, Not):
        return Not(resolve_recent(q.query, recent, keywords))
    if isinstance(q, Or):
        return Or(resolve_recent(q.left, recent, keywords), resolve_recent(q.right, recent, keywords))
    if isinstance(q, And):
        return And(tuple(resolve_recent(x, recent, keywords) for x in q.items))
    return q


def mentions_recent(q) -> bool:
    """Whether a search uses \\Recent (RECENT, NEW, OLD): not part of IMAP4rev2 (RFC 9051 App. E)."""
    if isinstance(q, HasFlag):
        return q.flag == "\\Recent"
    if isinstance(q, Not):
        return mentions_recent(q.query)
    if isinstance(q, Or):
        return mentions_recent(q.left) or mentions_recent(q.right)
    if isinstance(q, And):
        return any(mentions_recent(x) for x in q.items)
    return False


def saved_result(uids: list[int], options) -> list[int]:
    """What SEARCH RETURN (SAVE …) keeps as ``$``: every match, or only the lowest/highest when
    SAVE comes with MIN/MAX but not ALL/COUNT (RFC 5182 §2.4). ``uids`` ascending."""
    options = set(options)  # the RETURN options (a dict of them, or a set)
    if not uids or options & {b"ALL", b"COUNT"} or not options & {b"MIN", b"MAX"}:
        return list(uids)
    keep = {uids[0]} if b"MIN" in options else set()
    if b"MAX" in options:
        keep.add(uids[-1])
    return sorted(keep)


def parse_sort_criteria(tok) -> list[SortKey]:
    if not isinstance(tok, list) or not tok:
        raise ParseError("SORT needs a list of sort criteria")
    keys, reverse = [], False
    for t in tok:
        name = bytes(t).upper() if isinstance(t, Atom) else b""
        if name == b"REVERSE":
            if reverse:
                raise ParseError("REVERSE twice")
            reverse = True
            continue
        if name not in SORT_KEYS:
            raise ParseError("Unknown sort criterion")
        keys.append(SortKey(SORT_KEYS[name], reverse))
        reverse = False
    if reverse or not keys:
        raise ParseError("REVERSE must precede a sort key")
    return keys


def _search_parser(s: Session):
    sv = s.selected
    return SearchParser(lambda r: sv.uid_set(r, uid=False), lambda r: sv.uid_set(r, uid=True))


async def _modseq_of(s: Session, uids) -> int:
    infos = await deferToThread(s.ctx.store.messages.fetch, s.selected.folder_id, uids)
    return max((m.modseq for m in infos), default=0)


def parse_return(rest: list) -> tuple[dict | None, list]:
    """``RETURN (options)`` at the start of SEARCH/SORT criteria (RFC 4731, RFC 5267 ESORT,
    RFC 9394 PARTIAL): ({option: value}, the rest), or (None, rest) without RETURN."""
    if not (rest and isinstance(rest[0], Atom) and rest[0].upper() == b"RETURN"):
        return None, rest
    if len(rest) < 2 or not isinstance(rest[1], list):
        raise ParseError("RETURN needs a list of options")
    options: dict = {}
    toks = rest[1]
    i = 0
    while i < len(toks):
        name = bytes(toks[i]).upper() if isinstance(toks[i], Atom) else b""
        if name in options or name not in RETURN_OPTIONS and name != b"PARTIAL":
            raise ParseError("Unknown or repeated RETURN option")
        if name == b"PARTIAL":
            if i + 1 >= len(toks) or not isinstance(toks[i + 1], Atom):
                raise ParseError("PARTIAL needs a range")
            options[name] = (*parse_partial(bytes(toks[i + 1])), bytes(toks[i + 1]))
            i += 2
            continue
        options[name] = True
        i += 1
    if b"PARTIAL" in options and b"ALL" in options:
        raise ParseError("PARTIAL and ALL cannot be used together")  # RFC 9394 §3.1
    options.pop(b"CONTEXT", None)
    return options or {b"ALL": True}, rest[2:]


_PARTIAL = re.compile(rb"^(-?)([1-9]\d{0,9}):(-?)([1-9]\d{0,9})$")


def parse_partial(text: bytes) -> tuple[int, int]:
    """RFC 9394 partial-range: ``m:n`` (1-based positions) or ``-m:-n`` (from the end); returns
    (first, last) with first <= last, both positive or both negative."""
    m = _PARTIAL.match(text)
    if not m or m.group(1) != m.group(3):
        raise ParseError("Invalid PARTIAL range")
    a, b = int(m.group(2)), int(m.group(4))
    if max(a, b) > 0xFFFFFFFF:
        raise ParseError("Invalid PARTIAL range")
    lo, hi = min(a, b), max(a, b)
    return (lo, hi) if not m.group(1) else (-hi, -lo)


def partial_slice(items: list[int], rng: tuple[int, int]) -> list[int]:
    """The items at the positions of a partial range (RFC 9394 §3.1)."""
    lo, hi = rng
    if lo > 0:
        return items[lo - 1 : hi]
    n = len(items)
    return items[max(n + lo, 0) : max(n + hi + 1, 0)]


def esearch(tag: bytes, uid: bool, nums: list[int], options: dict, modseq: int | None = None, ordered: bool = False) -> bytes:
    """The ESEARCH response: SEARCH's results numerically (RFC 4731), SORT's in sort order
    (ordered: MIN/MAX are the first and last sorted, RFC 5267 §3)."""
    out = b'* ESEARCH (TAG "%s")' % tag + (b" UID" if uid else b"")
    if nums and b"MIN" in options:
        out += b" MIN %d" % (nums[0] if ordered else min(nums))
    if nums and b"MAX" in options:
        out += b" MAX %d" % (nums[-1] if ordered else max(nums))
    if b"COUNT" in options:
        out += b" COUNT %d" % len(nums)
    if nums and b"ALL" in options:
        out += b" ALL " + (_number_list(nums) if ordered else format_set(sorted(nums)))
    if b"PARTIAL" in options:
        lo, hi, asked = options[b"PARTIAL"]
        part = partial_slice(nums if ordered else sorted(nums), (lo, hi))
        shown = (_number_list(part) if ordered else format_set(part)) if part else b"NIL"
        out += b" PARTIAL (%s %s)" % (asked, shown)
    if modseq:
        out += b" MODSEQ %d" % modseq
    return out


async def search(s: Session, tag: bytes, rest, uid=False):
    sv = s.selected
    options, rest = parse_return(rest)
    _check_update_tag(s, tag, options)
    if options is not None and b"SAVE" in options:  # a SEARCH that fails leaves $ empty (RFC 5182 §2.1)
        sv.saved = []
    if options is None and s.rev2:  # RFC 9051 §6.4.4: always ESEARCH, RETURN (ALL) by default
        options = {b"ALL": True}
    parser = _search_parser(s)
    parsed = parser.parse(rest)
    if s.rev2 and mentions_recent(parsed):
        raise ParseError("IMAP4rev2 has no RECENT, NEW or OLD search keys")
    query = resolve_recent(parsed, sv.recent, sv.keywords)
    await authorize(s, sv.target, "read", "search")
    if parser.uses_modseq:
        s.enable_condstore()
    uids = await deferToThread(s.ctx.store.search.search, sv.folder_id, query)
    nums = uids if uid else [n for n in map(sv.msn_of, uids) if n is not None]
    modseq = await _modseq_of(s, uids) if parser.uses_modseq and uids else None
    if options is not None and b"UPDATE" in options:
        open_context(s, tag, uid, parsed, None, [u for u in uids if sv.msn_of(u) is not None])
    if options is not None and b"SAVE" in options:
        sv.saved = saved_result(uids, options)
        options = {k: v for k, v in options.items() if k != b"SAVE"}
        if not options:  # SAVE alone: no ESEARCH response (RFC 5182 §2.4)
            return OK, b"SEARCH completed, result saved"
    if options is None:
        tail = b" (MODSEQ %d)" % modseq if modseq else b""
        s.write_lines([b"* SEARCH" + b"".join(b" %d" % n for n in nums) + tail])
    else:
        s.write_lines([esearch(tag, uid, nums, options, modseq)])
    return OK, b"SEARCH completed"


THREAD_ALGORITHMS = {b"REFERENCES": thread.references, b"ORDEREDSUBJECT": thread.orderedsubject}


async def thread_(s: Session, tag: bytes, rest, uid=False):
    """THREAD algorithm charset search-criteria (RFC 5256 §3), and UID THREAD."""
    sv = s.selected
    if len(rest) < 3 or not isinstance(rest[0], Atom):
        raise ParseError("THREAD needs an algorithm, a charset and search keys")
    algorithm = THREAD_ALGORITHMS.get(bytes(rest[0]).upper())
    if algorithm is None:
        raise ParseError("Unknown threading algorithm")
    if not isinstance(rest[1], (Atom, String)):
        raise ParseError("THREAD needs a charset")
    if bytes(rest[1]).decode("ascii", "replace").upper() not in CHARSETS:
        raise BadCharset(bytes(rest[1]).decode("ascii", "replace"))
    parser = _search_parser(s)
    query = resolve_recent(parser.parse(rest[2:]), sv.recent, sv.keywords)
    await authorize(s, sv.target, "read", "thread")
    messages = await deferToThread(s.ctx.store.search.thread_messages, sv.folder_id, query)
    messages = [m for m in messages if uid or sv.msn_of(m.uid) is not None]
    roots = algorithm(messages)
    s.write_lines([b"* THREAD " + thread.render(roots, (lambda u: u) if uid else sv.msn_of)])
    return OK, b"THREAD completed"


async def sort(s: Session, tag: bytes, rest, uid=False):
    sv = s.selected
    options, rest = parse_return(rest)
    _check_update_tag(s, tag, options)
    if len(rest) < 3:
        raise ParseError("SORT needs criteria, a charset and search keys")
    if options is not None and b"SAVE" in options:
        raise ParseError("SORT RETURN (SAVE) is not supported")
    keys = parse_sort_criteria(rest[0])
    if not isinstance(rest[1], (Atom, String)):
        raise ParseError("SORT needs a charset")
    if bytes(rest[1]).decode("ascii", "replace").upper() not in CHARSETS:
        raise BadCharset(bytes(rest[1]).decode("ascii", "replace"))
    parser = _search_parser(s)
    parsed = parser.parse(rest[2:])
    if s.rev2 and mentions_recent(parsed):
        raise ParseError("IMAP4rev2 has no RECENT, NEW or OLD search keys")
    query = resolve_recent(parsed, sv.recent, sv.keywords)
    await authorize(s, sv.target, "read", "sort")
    uids = await deferToThread(s.ctx.store.search.sort, sv.folder_id, keys, query)
    nums = uids if uid else [n for n in map(sv.msn_of, uids) if n is not None]
    if options is not None and b"UPDATE" in options:
        open_context(s, tag, uid, parsed, keys, [u for u in uids if sv.msn_of(u) is not None])
    if options is None:
        s.write_lines([b"* SORT" + b"".join(b" %d" % n for n in nums)])
    else:
        s.write_lines([esearch(tag, uid, nums, options, ordered=True)])
    return OK, b"SORT completed"


# -- updating contexts (RFC 5267 §4.3) ----------------------------------------------------------
def _check_update_tag(s: Session, tag: bytes, options) -> None:
    """A tag already naming an updating context cannot start another (RFC 5267 §4.3: BAD)."""
    if options is not None and b"UPDATE" in options and tag in s.selected.contexts:
        raise ParseError("Tag reuse: that tag names an updating context")


def open_context(s: Session, tag: bytes, uid: bool, parsed, keys, result: list[int]) -> None:
    """Keep the result of this SEARCH/SORT current (RFC 5267 §4.3), or refuse with NOUPDATE
    (§4.3.1) past MAX_CONTEXTS; the other return options were honoured either way."""
    sv = s.selected
    if len(sv.contexts) >= contexts.MAX_CONTEXTS:
        s.write_lines([b'* NO [NOUPDATE "%s"] Too many updating contexts' % tag])
        return
    sv.contexts[tag] = contexts.Context(tag, uid, parsed, keys, result)


def cancelupdate(s: Session, tag: bytes, rest):
    """CANCELUPDATE "tag" … (RFC 5267 §4.3.5): no more updates for those contexts. A tag that
    names none fails the command (NO), as Dovecot answers, and cancels nothing."""
    if not rest:
        raise ParseError("CANCELUPDATE needs the tags of searching commands")
    tags = []
    for tok in rest:
        if not isinstance(tok, String):
            raise ParseError("CANCELUPDATE takes quoted tags")
        tags.append(bytes(tok))
    sv = s.selected
    if any(t not in sv.contexts for t in tags):
        return b"NO", b"Unknown search context"
    for t in tags:
        del sv.contexts[t]
    return OK, b"CANCELUPDATE completed"


async def refresh_contexts(s: Session) -> None:
    """Evaluate every updating context against the store now; the differences go out with the
    next flush (SelectedView.context_updates). One evaluation at a time per selection, so an
    older answer never overwrites a newer one."""
    sv = s.selected
    if sv is None or not sv.contexts:
        return
    if sv.context_lock is None:
        sv.context_lock = DeferredLock()
    await sv.context_lock.acquire()
    try:
        for ctx in list(sv.contexts.values()):
            query = resolve_recent(ctx.query, sv.recent, sv.keywords)
            if ctx.keys is None:
                found = sorted(await deferToThread(s.ctx.store.search.search, sv.folder_id, query))
            else:
                found = list(await deferToThread(s.ctx.store.search.sort, sv.folder_id, ctx.keys, query))
            if sv.contexts.get(ctx.tag) is ctx:
                ctx.fresh = found
    finally:
        sv.context_lock.release()
