"""SEARCH (RFC 3501, ESEARCH RFC 4731 result options, CONDSTORE MODSEQ) and SORT (RFC 5256).

Both run on the indexes the store keeps at delivery (``store.search.search`` / ``store.search.sort``); the
session only turns sequence numbers into UIDs and back, and resolves \\Recent.
"""

from __future__ import annotations

from dataclasses import replace

from twisted.internet.threads import deferToThread

from imap.access import authorize
from imap.searchparse import CHARSETS, BadCharset, SearchParser
from imap.session import format_set
from imap.state import Session
from imap.wire import Atom, ParseError, String
from storage.search import And, HasFlag, Not, Or, SortKey, UidSet

OK = b"OK"
RETURN_OPTIONS = {b"MIN", b"MAX", b"COUNT", b"ALL", b"SAVE"}
SORT_KEYS = {b"ARRIVAL": "arrival", b"CC": "cc", b"DATE": "date", b"FROM": "from", b"SIZE": "size", b"SUBJECT": "subject", b"TO": "to"}


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


def saved_result(uids: list[int], options: set[bytes]) -> list[int]:
    """What SEARCH RETURN (SAVE …) keeps as ``$``: every match, or only the lowest/highest when
    SAVE comes with MIN/MAX but not ALL/COUNT (RFC 5182 §2.4). ``uids`` ascending."""
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


async def search(s: Session, tag: bytes, rest, uid=False):
    sv = s.selected
    options = None
    if rest and isinstance(rest[0], Atom) and rest[0].upper() == b"RETURN":
        if len(rest) < 2 or not isinstance(rest[1], list):
            raise ParseError("RETURN needs a list of options")
        options = {bytes(o).upper() for o in rest[1] if isinstance(o, Atom)}
        if len(options) != len(rest[1]) or not options <= RETURN_OPTIONS:
            raise ParseError("Unknown RETURN option")
        options = options or {b"ALL"}
        rest = rest[2:]
        if b"SAVE" in options:  # a SEARCH that fails leaves $ empty (RFC 5182 §2.1)
            sv.saved = []
    if options is None and s.rev2:  # RFC 9051 §6.4.4: always ESEARCH, RETURN (ALL) by default
        options = {b"ALL"}
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
    if options is not None and b"SAVE" in options:
        sv.saved = saved_result(uids, options)
        options = options - {b"SAVE"}
        if not options:  # SAVE alone: no ESEARCH response (RFC 5182 §2.4)
            return OK, b"SEARCH completed, result saved"
    if options is None:
        tail = b" (MODSEQ %d)" % modseq if modseq else b""
        s.write_lines([b"* SEARCH" + b"".join(b" %d" % n for n in nums) + tail])
    else:
        out = b'* ESEARCH (TAG "%s")' % tag + (b" UID" if uid else b"")
        if nums and b"MIN" in options:
            out += b" MIN %d" % min(nums)
        if nums and b"MAX" in options:
            out += b" MAX %d" % max(nums)
        if b"COUNT" in options:
            out += b" COUNT %d" % len(nums)
        if nums and b"ALL" in options:
            out += b" ALL " + format_set(sorted(nums))
        if modseq:
            out += b" MODSEQ %d" % modseq
        s.write_lines([out])
    return OK, b"SEARCH completed"


async def sort(s: Session, tag: bytes, rest, uid=False):
    sv = s.selected
    if len(rest) < 3:
        raise ParseError("SORT needs criteria, a charset and search keys")
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
    s.write_lines([b"* SORT" + b"".join(b" %d" % n for n in nums)])
    return OK, b"SORT completed"
