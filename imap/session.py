"""Per-session view of the selected folder: MSN ↔ UID, and the updates not yet told to the client.

Sequence numbers belong to the session (RFC 3501 §2.3.1.2): they change only when this session
reports an EXPUNGE, which it may do only at certain points (§7.4.1: never while no command is in
progress, nor while answering FETCH, STORE or SEARCH). Until then an expunged message keeps its
number, new messages are appended, and flag changes made by others wait as untagged FETCHes.
"""

from __future__ import annotations

import bisect
from array import array

from storage.api import Changes, FolderView
from storage.search import UidSet

from imap import contexts
from imap.wire import ParseError


class SavedResult(tuple):
    """``$`` (RFC 5182 SEARCHRES, part of IMAP4rev2): the messages the last ``SEARCH RETURN
    (SAVE)`` kept in this selection; SelectedView.resolve and uid_set read it."""


SAVED = SavedResult()


def parse_seqset(text: bytes, *, saved: bool = True) -> tuple[tuple[int, int | None], ...]:
    """``1:4,7,9:*`` → ((1, 4), (7, 7), (9, None)); None stands for "*". Ranges are unordered.
    ``$`` alone is SAVED where the grammar allows it (``saved``)."""
    if text == b"$" and saved:
        return SAVED
    if not text:
        raise ParseError("Missing sequence set")
    out = []
    for item in text.split(b","):
        bounds = item.split(b":")
        if len(bounds) > 2 or not all(bounds):
            raise ParseError("Invalid sequence set")
        nums = [_seqnum(b) for b in bounds]
        lo, hi = (nums[0], nums[0]) if len(nums) == 1 else (nums[0], nums[1])
        if lo is None:
            lo, hi = hi, lo
        if lo is None:
            out.append((0, None))  # "*" alone: the last message
            continue
        if hi is not None and hi < lo:
            lo, hi = hi, lo
        out.append((lo, hi))
    return tuple(out)


def _seqnum(b: bytes) -> int | None:
    if b == b"*":
        return None
    if not b.isdigit() or b.startswith(b"0") or len(b) > 10 or int(b) > 0xFFFFFFFF:
        raise ParseError("Invalid sequence number")
    return int(b)


def compress(uids: list[int]) -> tuple[tuple[int, int], ...]:
    """Ascending uids → inclusive ranges (for UidSet and COPYUID)."""
    out: list[tuple[int, int]] = []
    for u in uids:
        if out and out[-1][1] == u - 1:
            out[-1] = (out[-1][0], u)
        else:
            out.append((u, u))
    return tuple(out)


def format_set(uids: list[int]) -> bytes:
    return b",".join(b"%d" % a if a == b else b"%d:%d" % (a, b) for a, b in compress(uids))


class SelectedView:
    def __init__(self, view: FolderView, readonly: bool) -> None:
        self.folder = view.folder
        self.folder_id = view.folder.id
        self.readonly = readonly
        self.target = None  # imap.access.Target: whose folder, reached under which name
        # 8 bytes per message in one block, not a list of int objects (~36 bytes each): a
        # session on a folder of 100,000 messages holds 0.8 MB for its numbering, and a FETCH
        # copies it (for its worker thread) with one memcpy.
        self.uids: array = array("q", view.uids)
        self.recent: set[int] = set(view.recent_uids)
        self.track_recent = True  # False under IMAP4rev2, which has no \Recent (RFC 9051 App. E)
        self.highestmodseq = view.folder.highestmodseq
        self.uidnext = view.folder.uidnext
        self.pending_expunge: set[int] = set()
        self.pending_flags: dict[int, tuple[frozenset[str], int]] = {}
        self.reported_modseq: dict[int, int] = {}  # this session's own STOREs, not echoed again
        self.told_exists = len(self.uids)
        self.told_recent = len(self.recent)
        #: arrivals at or above this UID are yet to be claimed as \\Recent (read-write views)
        self.claim_top = view.folder.uidnext
        self.unclaimed: tuple[int, int] | None = None  # (from, below): a claim to make
        self.claiming = None  # the Deferred of a claim on its way: commands wait for it
        # The mailbox's keywords (lower case → spelling) as told in FLAGS (RFC 3501 §7.2.6); a
        # keyword new to it is told in FLAGS again before the FETCH that shows it.
        self.keywords: dict[str, str] = {k.lower(): k for k in getattr(view, "keywords", ())}
        self.keywords_grew = False
        self.permanent = b""  # PERMANENTFLAGS' system flags (and \*), set by SELECT
        self.saved: list[int] = []  # SEARCHRES ``$``: UIDs, ascending; empty at SELECT (RFC 5182 §2.1)
        #: RFC 5267 §4.3 updating contexts by tag; they end with the selection or CANCELUPDATE
        self.contexts: dict[bytes, contexts.Context] = {}
        self.context_lock = None  # a DeferredLock serialising their re-evaluation (imap/op/search.py)

    def drop_recent(self) -> None:
        """IMAP4rev2: no \\Recent flag and no RECENT response from now on."""
        self.track_recent = False
        self.recent = set()
        self.told_recent = 0

    # -- the mailbox's flags -----------------------------------------------------------------------
    def note_keywords(self, flags) -> None:
        for f in flags:
            if not f.startswith("\\") and f.lower() not in self.keywords:
                self.keywords[f.lower()] = f
                self.keywords_grew = True

    def flags_lines(self) -> list[bytes]:
        """FLAGS and PERMANENTFLAGS: the system flags and every keyword in the mailbox; keywords
        are permanent (and new ones may be made, \\*) where this session may store them."""
        self.keywords_grew = False
        return flags_lines(self.keywords, self.permanent)

    def mailbox_flags(self) -> MailboxFlags:
        """A copy of the keywords told, for a FETCH's worker thread (``FlagText.announce``)."""
        return MailboxFlags(dict(self.keywords), self.permanent)

    def told_keywords(self, mailbox: MailboxFlags) -> None:
        """The keywords a FETCH told in FLAGS on its own (after ``mailbox_flags``)."""
        for low, spelling in mailbox.keywords.items():
            self.keywords.setdefault(low, spelling)

    # -- numbering -------------------------------------------------------------------------------
    @property
    def exists(self) -> int:
        return len(self.uids)

    def msn_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def resolve(self, ranges, *, uid: bool, clamp: bool = False) -> list[int]:
        """UIDs (ascending, present in the view) addressed by a sequence or UID set.

        A message sequence number above the number of messages (``*`` in an empty mailbox
        included) is a syntax error (RFC 3501 §9, seq-number), unless ``clamp``: SEARCH then
        matches the part of the set that exists, as Dovecot does.
        """
        if ranges is SAVED:  # the same messages whether asked for by number or by UID
            return [u for u in self.saved if self.msn_of(u) is not None]
        if not self.uids:
            if not uid and not clamp:
                raise ParseError("Message sequence number out of range")
            return []
        picked: set[int] = set()
        if uid:
            top = self.uids[-1]
            for lo, hi in ranges:
                lo = top if lo == 0 else lo
                hi = top if hi is None else hi
                lo, hi = min(lo, hi), max(lo, hi)
                a = bisect.bisect_left(self.uids, lo)
                b = bisect.bisect_right(self.uids, hi)
                picked.update(self.uids[a:b])
        else:
            n = len(self.uids)
            for lo, hi in ranges:
                lo = n if lo == 0 else lo
                hi = n if hi is None else hi
                lo, hi = min(lo, hi), max(lo, hi)
                if hi > n:
                    if not clamp:
                        raise ParseError("Message sequence number out of range")
                    hi = n
                picked.update(self.uids[lo - 1 : hi])
        return sorted(picked)

    def uid_set(self, ranges, *, uid: bool) -> UidSet:
        """A search-tree UidSet; MSN sets are turned into the UIDs they name in this view.

        ``n:*`` always includes the last message, even if n is above every UID (RFC 3501 §6.4.8).
        """
        if not uid or ranges is SAVED:
            return UidSet(compress(self.resolve(ranges, uid=False, clamp=True)))
        top = self.uids[-1] if self.uids else 0
        out = []
        for lo, hi in ranges:
            lo = lo or top
            if hi is None:
                out.append((min(lo, top), None) if top else (lo, None))
            else:
                out.append((min(lo, hi), max(lo, hi)))
        return UidSet(tuple(out))

    # -- updates from the store ------------------------------------------------------------------
    def apply(self, ch: Changes) -> None:
        last = self.uids[-1] if self.uids else 0
        for m in ch.new:
            if m.uid > last:
                self.uids.append(m.uid)
                self.note_keywords(m.flags)
                last = m.uid
        if self.track_recent and not self.readonly and self.uids and last >= self.claim_top:
            # \\Recent for one session only (RFC 3501 §2.3.2): the arrivals are taken in the
            # store (``claim_recent``), and are \\Recent here if this session got them first.
            self.unclaimed = (self.claim_top, last + 1)
            self.claim_top = last + 1
        for m in ch.updated:
            if self.reported_modseq.get(m.uid, 0) >= m.modseq or self.msn_of(m.uid) is None:
                continue
            if m.uid in self.pending_flags and self.pending_flags[m.uid][1] >= m.modseq:
                continue  # an older answer arriving after a newer one
            self.pending_flags[m.uid] = (m.flags, m.modseq)
            self.note_keywords(m.flags)
        for uid in ch.expunged:
            if self.msn_of(uid) is not None:
                self.pending_expunge.add(uid)
                self.pending_flags.pop(uid, None)
        self.highestmodseq = max(self.highestmodseq, ch.highestmodseq)
        self.uidnext = max(self.uidnext, ch.uidnext)

    def take_claim(self) -> tuple[int, int] | None:
        """The UID range to claim in the store now (and forget: it is claimed once)."""
        claim, self.unclaimed = self.unclaimed, None
        return claim

    def claimed(self, floor: int, below: int) -> None:
        """The store's answer to a claim: messages in [floor, below) are \\Recent here."""
        if floor < below:
            lo = bisect.bisect_left(self.uids, floor)
            hi = bisect.bisect_left(self.uids, below)
            self.recent.update(u for u in self.uids[lo:hi] if u not in self.pending_expunge)

    def expunged_now(self, uids) -> None:
        """This session's own EXPUNGE/MOVE removed these; report them at the next flush."""
        for uid in uids:
            if self.msn_of(uid) is not None:
                self.pending_expunge.add(uid)
                self.pending_flags.pop(uid, None)

    def note_own_flags(self, uid: int, modseq: int) -> None:
        """This session's STORE told the flags as of ``modseq``: an older change of another
        session is not told again; a newer one (committed before this STORE's answer came
        back) still is."""
        self.reported_modseq[uid] = max(modseq, self.reported_modseq.get(uid, 0))
        pending = self.pending_flags.get(uid)
        if pending is not None and pending[1] <= modseq:
            del self.pending_flags[uid]

    def flush(
        self, *, allow_expunge: bool, with_modseq: bool = False, vanished: bool = False, with_flags: bool = True
    ) -> list[bytes]:
        """Untagged responses for everything pending that may be sent now (flag changes only
        ``with_flags``: NOTIFY without FlagChange leaves them for a command's response)."""
        out: list[bytes] = self.flags_lines() if self.keywords_grew else []
        # New messages first, so every number an EXPUNGE names is one the client knows.
        if len(self.uids) != self.told_exists:
            out.append(b"* %d EXISTS" % len(self.uids))
            self.told_exists = len(self.uids)
        if allow_expunge and self.pending_expunge:
            gone = self.pending_expunge
            # A context loses its expunged members before the EXPUNGE (RFC 5267 §4.3.4).
            for ctx in self.contexts.values():
                stay = [u for u in ctx.result if u not in gone]
                if len(stay) != len(ctx.result):
                    out.extend(contexts.update_lines(ctx, stay, self._context_number(ctx)))
            if vanished:  # QRESYNC (RFC 7162 §3.2.10): UIDs instead of sequence numbers
                out.append(b"* VANISHED " + format_set(sorted(gone)))
            else:
                msns = sorted(self.msn_of(u) for u in gone)
                # Ascending order: each report shifts the later numbers down by one.
                out.extend(b"* %d EXPUNGE" % (m - i) for i, m in enumerate(msns))
            self.uids = array("q", (u for u in self.uids if u not in gone))
            if self.saved:
                self.saved = [u for u in self.saved if u not in gone]
            self.recent -= gone
            for u in gone:
                self.reported_modseq.pop(u, None)
            self.pending_expunge = set()
            self.told_exists = len(self.uids)
        if self.track_recent and len(self.recent) != self.told_recent:
            out.append(b"* %d RECENT" % len(self.recent))
            self.told_recent = len(self.recent)
        if not with_flags:
            return out + self.context_updates()
        for uid in sorted(self.pending_flags):
            flags, modseq = self.pending_flags[uid]
            msn = self.msn_of(uid)
            if msn is None:
                continue
            extra = b" MODSEQ (%d)" % modseq if with_modseq else b""
            out.append(b"* %d FETCH (UID %d FLAGS (%s)%s)" % (msn, uid, format_flags(flags, uid in self.recent), extra))
            # The same change may come again (a poll and a PostgreSQL notification): told once.
            self.reported_modseq[uid] = max(modseq, self.reported_modseq.get(uid, 0))
        self.pending_flags = {}
        return out + self.context_updates()

    # -- search and sort contexts (RFC 5267 §4.3) -------------------------------------------------
    def _context_number(self, ctx: contexts.Context):
        return int if ctx.uid else self.msn_of

    def context_updates(self) -> list[bytes]:
        """ADDTO/REMOVEFROM for the contexts the store re-evaluated, after EXISTS (so every
        number is one the client knows, RFC 5267 §4.3.3): messages not yet announced, or
        already gone from this view, wait for the next evaluation."""
        out: list[bytes] = []
        for ctx in self.contexts.values():
            if ctx.fresh is None:
                continue
            new = [u for u in ctx.fresh if self.msn_of(u) is not None]
            ctx.fresh = None
            out.extend(contexts.update_lines(ctx, new, self._context_number(ctx)))
        return out


def flags_lines(keywords: dict[str, str], permanent: bytes) -> list[bytes]:
    kws = " ".join(sorted(keywords.values())).encode("utf-8")
    flags = b"\\Answered \\Flagged \\Deleted \\Seen \\Draft" + (b" " + kws if kws else b"")
    perm = permanent
    if b"\\*" in perm and kws:
        perm = kws + b" " + perm
    return [b"* FLAGS (" + flags + b")", b"* OK [PERMANENTFLAGS (" + perm + b")] Flags permitted"]


class MailboxFlags:
    """The keywords a session has told its client, carried into a FETCH's worker thread: a
    row showing one more is preceded by FLAGS and PERMANENTFLAGS lines (RFC 3501 §7.2.6)."""

    def __init__(self, keywords: dict[str, str], permanent: bytes) -> None:
        self.keywords, self.permanent = keywords, permanent

    def announce(self, flags) -> bytes:
        new = [f for f in flags if not f.startswith("\\") and f.lower() not in self.keywords]
        if not new:
            return b""
        for f in new:
            self.keywords[f.lower()] = f
        return b"\r\n".join(flags_lines(self.keywords, self.permanent)) + b"\r\n"


def format_flags(flags, recent: bool = False) -> bytes:
    items = sorted(flags)
    if recent:
        items.append("\\Recent")
    return " ".join(items).encode("utf-8")
