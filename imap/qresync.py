"""CONDSTORE / QRESYNC (RFC 7162) pieces that are not a whole command: SELECT parameters,
the resynchronisation answer, and the VANISHED (EARLIER) set of a UID FETCH."""

from __future__ import annotations

from dataclasses import dataclass

from imap.session import SelectedView, format_flags, format_set, parse_seqset
from imap.wire import Atom, ParseError


@dataclass(frozen=True)
class SelectParams:
    condstore: bool = False
    qresync: tuple[int, int, tuple | None] | None = None  # (uidvalidity, modseq, known uid ranges)


def _number(tok, what: str) -> int:
    if not isinstance(tok, Atom) or not tok.isdigit():
        raise ParseError(f"QRESYNC needs {what}")
    return int(tok)


def parse_select_params(tokens: list | None, qresync_enabled: bool) -> SelectParams:
    if not tokens:
        return SelectParams()
    condstore, qresync = False, None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        name = bytes(tok).upper() if isinstance(tok, Atom) else b""
        if name == b"CONDSTORE":
            condstore = True
            i += 1
        elif name == b"QRESYNC":
            if not qresync_enabled:
                raise ParseError("QRESYNC must be enabled first (ENABLE QRESYNC)")
            if i + 1 >= len(tokens) or not isinstance(tokens[i + 1], list) or len(tokens[i + 1]) < 2:
                raise ParseError("QRESYNC needs (uidvalidity modseq [known-uids])")
            arg = tokens[i + 1]
            known = parse_seqset(bytes(arg[2]), saved=False) if len(arg) > 2 and isinstance(arg[2], Atom) else None
            qresync = (_number(arg[0], "a UIDVALIDITY"), _number(arg[1], "a mod-sequence"), known)
            i += 2
        else:
            raise ParseError("Unknown SELECT parameter")
    return SelectParams(condstore or qresync is not None, qresync)


def in_ranges(uid: int, ranges, top: int) -> bool:
    for lo, hi in ranges:
        lo = top if lo == 0 else lo
        hi = top if hi is None else hi
        if min(lo, hi) <= uid <= max(lo, hi):
            return True
    return False


def resync_lines(sv: SelectedView, changes, known) -> list[bytes]:
    """VANISHED (EARLIER) for expunges since the client's modseq, then FETCH for changed flags."""
    top = max(sv.uidnext - 1, 1)
    gone = [u for u in changes.expunged if known is None or in_ranges(u, known, top)]
    out = [b"* VANISHED (EARLIER) " + format_set(gone)] if gone else []
    for m in changes.updated:
        msn = sv.msn_of(m.uid)
        if msn is not None:
            out.append(b"* %d FETCH (UID %d FLAGS (%s) MODSEQ (%d))" % (msn, m.uid, format_flags(m.flags, m.uid in sv.recent), m.modseq))
    return out
