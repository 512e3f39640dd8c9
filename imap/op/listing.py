"""LIST and LSUB: RFC 3501, LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE
(RFC 6154) and CHILDREN (RFC 3348) attributes. Delimiter "/", names in modified UTF-7.
"""

from __future__ import annotations

import re

from twisted.internet.threads import deferToThread

from imap.access import visible_shared
from imap.args import decode_mailbox, normalize_mailbox
from imap.op.acl import rights_by_owner_sync
from imap.op.folders import folder_status, status_line
from imap.state import Session
from imap.wire import Atom, ParseError, String, astring
from storage.api import Right

OK = b"OK"
DELIM = "/"
SELECTION = {b"SUBSCRIBED", b"REMOTE", b"RECURSIVEMATCH", b"SPECIAL-USE"}
RETURNS = {b"SUBSCRIBED", b"CHILDREN", b"STATUS", b"SPECIAL-USE", b"MYRIGHTS"}
STATUS_ITEMS = {b"MESSAGES", b"RECENT", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN", b"HIGHESTMODSEQ", b"SIZE", b"DELETED", b"MAILBOXID"}


def pattern_regex(pattern: str) -> re.Pattern:
    out = [".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch) for ch in pattern]
    return re.compile("^" + "".join(out) + "$", re.S)


def with_parents(names) -> dict[str, bool]:
    """Every folder name (True) plus the missing parents of hierarchical names (False)."""
    every = {n: True for n in names}
    for name in names:
        parts = name.split(DELIM)
        for i in range(1, len(parts)):
            every.setdefault(DELIM.join(parts[:i]), False)
    return every


def _astring_token(tok) -> bytes:
    if not isinstance(tok, (Atom, String)):
        raise ParseError("Expected a mailbox pattern")
    return bytes(tok)


def parse_list_args(tokens: list, utf8: bool = False) -> tuple[set, str, list[str], set, list]:
    """→ (selection options, reference, patterns, return options, STATUS items)."""
    toks = list(tokens)
    selection: set = set()
    if toks and isinstance(toks[0], list):
        selection = {bytes(t).upper() for t in toks.pop(0) if isinstance(t, Atom)}
        if not selection <= SELECTION:
            raise ParseError("Unknown LIST selection option")
        if selection == {b"RECURSIVEMATCH"} or selection == {b"RECURSIVEMATCH", b"REMOTE"}:
            raise ParseError("RECURSIVEMATCH needs another selection option")
    if len(toks) < 2:
        raise ParseError("LIST needs a reference and a pattern")
    ref = decode_mailbox(_astring_token(toks.pop(0)), utf8)
    pat = toks.pop(0)
    raw_patterns = pat if isinstance(pat, list) else [pat]
    patterns = [decode_mailbox(_astring_token(p), utf8) for p in raw_patterns]
    returns: set = set()
    status_items: list = []
    if toks:
        if len(toks) != 2 or not isinstance(toks[0], Atom) or toks[0].upper() != b"RETURN" or not isinstance(toks[1], list):
            raise ParseError("Expected RETURN (options)")
        opts = toks[1]
        i = 0
        while i < len(opts):
            name = bytes(opts[i]).upper() if isinstance(opts[i], Atom) else b""
            if name not in RETURNS:
                raise ParseError("Unknown LIST return option")
            returns.add(name)
            if name == b"STATUS":
                if i + 1 >= len(opts) or not isinstance(opts[i + 1], list):
                    raise ParseError("STATUS needs a list of items")
                status_items = [bytes(x).upper() for x in opts[i + 1]]
                if not set(status_items) <= STATUS_ITEMS:
                    raise ParseError("Unknown STATUS item")
                i += 1
            i += 1
    return selection, ref, patterns, returns, status_items


async def visible_folders(s: Session) -> tuple[dict, set]:
    """Client name → Folder for the own folders and those of the unit mailboxes the user
    may read (under their shared path), and the set of the shared names."""
    visible = [sm for sm in await visible_shared(s) if Right.READ in sm.rights]

    def load():
        store = s.ctx.store
        own = {f.name: f for f in store.folders.list_folders(s.account.id)}
        shared = {}
        for sm in visible:
            for f in store.folders.list_folders(sm.account.id):
                shared[f"{sm.path}{DELIM}{f.name}"] = f
        return own, shared

    own, shared = await deferToThread(load)
    own.update(shared)
    return own, set(shared)


async def list_(s: Session, tag: bytes, rest):
    selection, ref, patterns, returns, status_items = parse_list_args(rest, s.utf8_names)
    if s.rev2 and b"RECENT" in status_items:
        raise ParseError("IMAP4rev2 has no STATUS RECENT")
    extended = bool(selection or returns or len(patterns) != 1)
    if not extended and not patterns[0]:
        s.untagged(b'LIST (\\Noselect) "/" ""')
        return OK, b"LIST completed"
    info, shared = await visible_folders(s)
    subscribed = set(await deferToThread(s.ctx.store.folders.subscriptions, s.account.id)) if (
        b"SUBSCRIBED" in selection or b"SUBSCRIBED" in returns) else set()
    # LIST (SUBSCRIBED) lists a subscribed name whose folder is gone as \NonExistent (RFC 5258 §3.1).
    gone = subscribed - set(info) if b"SUBSCRIBED" in selection else set()
    every = with_parents(set(info) | gone)
    every.update(dict.fromkeys(gone, False))
    parents = {n.rsplit(DELIM, 1)[0] for n in every if DELIM in n}
    rxs = [pattern_regex(normalize_mailbox(p if not ref or p.startswith(DELIM) else ref + p)) for p in patterns if p]
    myrights = await deferToThread(rights_by_owner_sync, s, {f.account_id for f in info.values()}) if (
        b"MYRIGHTS" in returns) else None
    lines, listed = [], []
    for name in sorted(every, key=lambda n: (n != "INBOX", n)):
        if not any(rx.match(name) for rx in rxs):
            continue
        exists = every[name]
        childinfo = False
        if b"SUBSCRIBED" in selection and name not in subscribed:
            if b"RECURSIVEMATCH" in selection and any(s.startswith(name + DELIM) for s in subscribed):
                childinfo = True
            else:
                continue
        use = info[name].special_use if exists and name not in shared else None
        if b"SPECIAL-USE" in selection and not use:
            continue
        attrs = []
        if not exists:
            attrs.append("\\NonExistent" if extended or s.rev2 else "\\Noselect")
        attrs.append("\\HasChildren" if name in parents else "\\HasNoChildren")
        if use:
            attrs.append(use)
        if (b"SUBSCRIBED" in selection or b"SUBSCRIBED" in returns) and name in subscribed:
            attrs.append("\\Subscribed")
        line = b'* LIST (%s) "/" %s' % (" ".join(attrs).encode(), s.wire_name(name))
        extra = [b'"CHILDINFO" ("SUBSCRIBED")'] if childinfo else []
        if myrights is not None and exists:  # RFC 8440
            extra.append(b'"MYRIGHTS" ' + astring(myrights[info[name].account_id]))
        if extra:
            line += b" (" + b" ".join(extra) + b")"
        lines.append(line)
        if status_items and exists:
            listed.append((len(lines), name, info[name]))
    for offset, (pos, name, folder) in enumerate(listed):
        st, deleted = await deferToThread(folder_status, s, folder.id, status_items)
        lines.insert(pos + offset, status_line(s, st, status_items, name, deleted))
    s.write_lines(lines)
    return OK, b"LIST completed"


async def lsub(s: Session, tag: bytes, ref, pattern):
    if not pattern:
        s.untagged(b'LSUB (\\Noselect) "/" ""')
        return OK, b"LSUB completed"
    folders = {f.name for f in await deferToThread(s.ctx.store.folders.list_folders, s.account.id)}
    subscribed = set(await deferToThread(s.ctx.store.folders.subscriptions, s.account.id))
    rx = pattern_regex(normalize_mailbox(pattern if not ref or pattern.startswith(DELIM) else ref + pattern))
    lines = []
    for name, is_subscribed in sorted(with_parents(subscribed).items(), key=lambda kv: (kv[0] != "INBOX", kv[0])):
        if not rx.match(name):
            continue
        # An unsubscribed parent is listed (\Noselect) only when a "%" stopped the match above
        # a subscribed child (RFC 3501 §6.3.9): not for "*", which lists the child itself.
        if not is_subscribed and all(rx.match(n) for n in subscribed if n.startswith(name + DELIM)):
            continue
        attrs = b"\\Noselect" if not is_subscribed else b"" if name in folders else b"\\NonExistent"
        lines.append(b'* LSUB (%s) "/" %s' % (attrs, s.wire_name(name)))
    s.write_lines(lines)
    return OK, b"LSUB completed"


async def list_response(s: Session, name: str) -> bytes:
    """The LIST line of one existing folder, as IMAP4rev2's SELECT/EXAMINE send it (RFC 9051
    §6.3.2): its children and special-use attributes."""
    info, shared = await visible_folders(s)
    attrs = ["\\HasChildren" if any(n.startswith(name + DELIM) for n in info) else "\\HasNoChildren"]
    use = info[name].special_use if name in info and name not in shared else None
    if use:
        attrs.append(use)
    return b'* LIST (%s) "/" %s' % (" ".join(attrs).encode(), s.wire_name(name))
