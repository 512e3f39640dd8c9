"""Normalisation of IMAP responses, limited to what legitimately differs between two correct
servers:

* human-readable text of tagged responses, untagged OK/NO/BAD/BYE/PREAUTH and continuation
  requests (response codes are kept), and the greeting (not compared at all);
* capability lists: ``* CAPABILITY`` becomes a placeholder (and is dropped from the replies to
  other commands than CAPABILITY, where it is optional), the optional ``[CAPABILITY ...]``
  response code is dropped; the lists are collected and compared separately (a report);
* UIDVALIDITY values (each distinct value becomes <uvN>, numbered by first appearance, so "same
  mailbox, same UIDVALIDITY" is still compared);
* MODSEQ values: replaced by one placeholder (see Normaliser.finish); the scripts compare the
  results of CHANGEDSINCE/UNCHANGEDSINCE/SEARCH MODSEQ with values taken from each server;
* INTERNALDATE within two days of now (the script did not set it);
* ``* OK [HIGHESTMODSEQ n]`` at SELECT/EXAMINE before the script used any CONDSTORE feature
  (ours sends it always, Dovecot after CONDSTORE is enabled, RFC 7162 §3.1);
* the MAILBOXID response code (RFC 8474 §4: on CREATE's OK and an untagged OK at SELECT/EXAMINE,
  ours only: Dovecot 2.3 has no OBJECTID, and the ids are the server's choice anyway);
* [CLIENTBUG] on an OK reply (Dovecot's hint that the command was needless; the command
  succeeded, so the code is only commentary);
* the ID response's parameters (server identity);
* an exact repeat of an untagged FETCH response within one reply (kept once);
* the order of a run of EXPUNGE responses (same messages removed, see canonical_expunges);
* LIST/LSUB mailbox attributes a server MAY send unasked (see optional_list_attributes);
* the order of things RFC 3501 leaves free: FETCH data items within one FETCH response, flags
  within a flag list, attributes of a LIST response, STATUS items, ESEARCH return items, SEARCH
  numbers (ascending), untagged responses of SELECT/EXAMINE, LIST/LSUB responses of one command;
* the case of MIME type, subtype, encoding, disposition and parameter names in BODY and
  BODYSTRUCTURE (case-insensitive per RFC 2045/2183);
* a string's form: quoted and literal strings are rendered alike (a literal8 keeps its "~"), and
  a mailbox name (an astring) sent as an atom is rendered as a string.
"""

from __future__ import annotations

import datetime as _dt
import re

NUMBER = re.compile(rb"^\d+$")


class Atom(bytes):
    pass


class Str(bytes):
    binary = False


class List(list):
    pass


def tokenize(data: bytes, pos: int = 0, close: bytes | None = None) -> tuple[list, int]:
    out: list = []
    n = len(data)
    while pos < n:
        c = data[pos:pos + 1]
        if c == b" ":
            pos += 1
            continue
        if close is not None and c == close:
            return out, pos + 1
        if c == b"(":
            items, pos = tokenize(data, pos + 1, b")")
            out.append(List(items))
            continue
        if c == b'"':
            pos += 1
            buf = b""
            while pos < n and data[pos:pos + 1] != b'"':
                if data[pos:pos + 1] == b"\\":
                    pos += 1
                buf += data[pos:pos + 1]
                pos += 1
            out.append(Str(buf))
            pos += 1
            continue
        m = re.compile(rb"(~?)\{(\d+)\+?\}\r\n").match(data, pos)
        if m:
            length = int(m.group(2))
            s = Str(data[m.end():m.end() + length])
            s.binary = bool(m.group(1))
            out.append(s)
            pos = m.end() + length
            continue
        # an atom, possibly with [section] parts (which may hold spaces, parens, quotes)
        start = pos
        depth = 0
        while pos < n:
            ch = data[pos:pos + 1]
            if ch == b"[":
                depth += 1
            elif ch == b"]":
                depth -= 1
            elif ch == b'"' and depth:
                pos += 1
                while pos < n and data[pos:pos + 1] != b'"':
                    pos += 2 if data[pos:pos + 1] == b"\\" else 1
            elif depth <= 0 and ch in (b" ", b"(", b")"):
                break
            pos += 1
        out.append(Atom(data[start:pos]))
    return out, pos


def render_str(s: bytes) -> str:
    out = []
    for ch in s.decode("utf-8", errors="surrogateescape"):
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\n":
            out.append("\\n")
        elif 0xDC80 <= o <= 0xDCFF:
            out.append("\\x%02x" % (o - 0xDC00))
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        else:
            out.append(ch)
    return ('~"' if getattr(s, "binary", False) else '"') + "".join(out) + '"'


def render(tok) -> str:
    if isinstance(tok, List):
        return "(" + " ".join(render(t) for t in tok) + ")"
    if isinstance(tok, Str):
        return render_str(tok)
    if isinstance(tok, Atom):
        return tok.decode("utf-8", errors="replace")
    return str(tok)


def _astring(tok):
    """A mailbox name is an astring: atom and string forms are the same name."""
    return Str(tok) if isinstance(tok, Atom) else tok


def _sorted_flags(lst: List) -> List:
    return List(sorted(lst, key=lambda t: bytes(t).lower()))


class Normaliser:
    """Per server and script: keeps the UIDVALIDITY numbering, MODSEQ values and capabilities."""

    def __init__(self) -> None:
        self.uv: dict[bytes, str] = {}
        self.modseqs: set[int] = set()
        self.capabilities: set[str] = set()
        self.now = _dt.datetime.now(_dt.timezone.utc)
        self.last_highestmodseq = "0"
        self.last_modseq = "0"

    # -- placeholders --------------------------------------------------------------------
    def uidvalidity(self, value: bytes) -> Atom:
        if value not in self.uv:
            self.uv[value] = f"<uv{len(self.uv) + 1}>"
        return Atom(self.uv[value].encode())

    def modseq(self, value: bytes, highest: bool = False) -> Atom:
        if not NUMBER.match(value):
            return Atom(value)
        self.modseqs.add(int(value))
        if highest:
            self.last_highestmodseq = value.decode()
        else:
            self.last_modseq = value.decode()
        return Atom(b"<M:%s>" % value)

    def finish(self, lines: list[str]) -> list[str]:
        # Dovecot gives every new message the same mod-sequence, ours one each (RFC 7162 allows
        # both), so even the ranks differ: values become one placeholder. What CONDSTORE does
        # with them is still compared: CHANGEDSINCE/UNCHANGEDSINCE/SEARCH MODSEQ results, [MODIFIED].
        return [re.sub(r"<M:\d+>", "<modseq>", ln) for ln in lines]

    def internaldate(self, tok):
        try:
            when = _dt.datetime.strptime(bytes(tok).decode().strip(), "%d-%b-%Y %H:%M:%S %z")
        except ValueError:
            return tok
        if abs((when - self.now).total_seconds()) < 2 * 86400:
            return Atom(b"<now>")
        return tok

    # -- response codes ------------------------------------------------------------------
    def code(self, code: bytes) -> str | None:
        toks, _ = tokenize(code)
        if not toks:
            return "[]"
        name = bytes(toks[0]).upper()
        if name == b"CAPABILITY":
            self.capabilities.update(bytes(t).decode() for t in toks[1:])
            return None
        if name == b"MAILBOXID":
            return None
        if name == b"UIDVALIDITY" and len(toks) > 1:
            toks[1] = self.uidvalidity(toks[1])
        elif name in (b"APPENDUID", b"COPYUID") and len(toks) > 1:
            toks[1] = self.uidvalidity(toks[1])
        elif name == b"HIGHESTMODSEQ" and len(toks) > 1:
            toks[1] = self.modseq(toks[1], highest=True)
        elif name == b"PERMANENTFLAGS" and len(toks) > 1 and isinstance(toks[1], List):
            toks[1] = _sorted_flags(toks[1])
        return "[" + " ".join(render(t) for t in toks) + "]"

    # -- one response ----------------------------------------------------------------------
    def response(self, r: bytes) -> str:
        if r.startswith(b"<"):
            return r.decode()
        if r.startswith(b"+"):
            return "+"
        first, _, rest = r.partition(b" ")
        status, _, after = rest.partition(b" ")
        if status.upper() in (b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH"):
            out = (first + b" " + status).decode()
            if after.startswith(b"["):
                end = _code_end(after)
                code = self.code(after[1:end])
                if code == "[CLIENTBUG]" and status.upper() == b"OK":
                    code = None  # Dovecot's informational hint on an OK (RFC 5530 §3), text-like
                if code is not None:
                    out += " " + code
            return out
        if first != b"*":
            return r.decode("utf-8", errors="replace")
        toks, _ = tokenize(rest)
        return "* " + " ".join(render(t) for t in self.data(toks))

    def data(self, toks: list) -> list:
        if not toks:
            return toks
        head = bytes(toks[0]).upper() if isinstance(toks[0], Atom) else b""
        if NUMBER.match(head) and len(toks) > 2 and bytes(toks[1]).upper() == b"FETCH" and isinstance(toks[2], List):
            items = toks[2]
            pairs = [(items[i], items[i + 1] if i + 1 < len(items) else Atom(b"")) for i in range(0, len(items), 2)]
            norm = []
            for key, value in pairs:
                k = bytes(key).upper()
                if k == b"FLAGS" and isinstance(value, List):
                    value = _sorted_flags(value)
                elif k == b"INTERNALDATE":
                    value = self.internaldate(value)
                elif k in (b"BODY", b"BODYSTRUCTURE") and isinstance(value, List):
                    value = canon_body(value)
                elif k == b"MODSEQ" and isinstance(value, List) and value:
                    value = List([self.modseq(value[0])])
                norm.append((key, value))
            norm.sort(key=lambda kv: bytes(kv[0]).upper())
            return toks[:2] + [List([x for kv in norm for x in kv])]
        if head == b"CAPABILITY":
            self.capabilities.update(bytes(t).decode() for t in toks[1:])
            return [toks[0], Atom(b"<capabilities>")]
        if head == b"FLAGS" and len(toks) > 1 and isinstance(toks[1], List):
            return [toks[0], _sorted_flags(toks[1])]
        if head in (b"LIST", b"LSUB") and len(toks) > 3 and isinstance(toks[1], List):
            ext = toks[4:]
            if ext and isinstance(ext[0], List):
                # RFC 5258 §9: mbox-list-extended-item-tag is an astring
                ext[0] = List(Atom(t) if i % 2 == 0 and isinstance(t, Str) else t for i, t in enumerate(ext[0]))
            return [toks[0], _sorted_flags(toks[1]), toks[2], _astring(toks[3])] + ext
        if head == b"STATUS" and len(toks) > 2 and isinstance(toks[2], List):
            items = toks[2]
            pairs = []
            for i in range(0, len(items) - 1, 2):
                k, v = items[i], items[i + 1]
                if bytes(k).upper() == b"UIDVALIDITY":
                    v = self.uidvalidity(v)
                elif bytes(k).upper() == b"HIGHESTMODSEQ":
                    v = self.modseq(v, highest=True)
                pairs.append((k, v))
            pairs.sort(key=lambda kv: bytes(kv[0]).upper())
            return [toks[0], _astring(toks[1]), List([x for kv in pairs for x in kv])]
        if head == b"SEARCH":
            nums = [t for t in toks[1:] if isinstance(t, Atom) and NUMBER.match(t)]
            rest = [t for t in toks[1:] if not (isinstance(t, Atom) and NUMBER.match(t))]
            for t in rest:
                if isinstance(t, List) and len(t) == 2 and bytes(t[0]).upper() == b"MODSEQ":
                    t[1] = self.modseq(t[1])
            return [toks[0]] + sorted(nums, key=int) + rest
        if head == b"ESEARCH":
            out = [toks[0]]
            i = 1
            if i < len(toks) and isinstance(toks[i], List):
                out.append(toks[i])
                i += 1
            if i < len(toks) and bytes(toks[i]).upper() == b"UID":
                out.append(toks[i])
                i += 1
            pairs = []
            while i + 1 < len(toks):
                k, v = toks[i], toks[i + 1]
                if bytes(k).upper() == b"MODSEQ":
                    v = self.modseq(v)
                pairs.append((k, v))
                i += 2
            pairs.sort(key=lambda kv: bytes(kv[0]).upper())
            return out + [x for kv in pairs for x in kv] + toks[i:]
        if head == b"ID" and len(toks) > 1 and isinstance(toks[1], List):
            return [toks[0], Atom(b"<server-id>")]
        return toks


def _upper(tok):
    return Str(bytes(tok).upper()) if isinstance(tok, Str) else tok


def _params(tok):
    if isinstance(tok, List):
        return List(_upper(t) if i % 2 == 0 else t for i, t in enumerate(tok))
    return tok


def _disposition(tok):
    if isinstance(tok, List) and len(tok) == 2:
        return List([_upper(tok[0]), _params(tok[1])])
    return tok


def canon_body(b: List) -> List:
    """MIME type, subtype, encoding, disposition type and parameter names are case-insensitive
    (RFC 2045 §5.1, §6.1; RFC 2183 §2): upper-case them; values keep their case."""
    b = List(b)
    if b and isinstance(b[0], List):  # multipart: parts, subtype, [params, disposition, ...]
        i = 0
        while i < len(b) and isinstance(b[i], List):
            b[i] = canon_body(b[i])
            i += 1
        if i < len(b):
            b[i] = _upper(b[i])
        if i + 1 < len(b):
            b[i + 1] = _params(b[i + 1])
        if i + 2 < len(b):
            b[i + 2] = _disposition(b[i + 2])
        return b
    if len(b) < 7:
        return b
    b[0], b[1], b[2], b[5] = _upper(b[0]), _upper(b[1]), _params(b[2]), _upper(b[5])
    t = (bytes(b[0]).upper(), bytes(b[1]).upper())
    ext = 7
    if t[0] == b"TEXT":
        ext = 8
    elif t == (b"MESSAGE", b"RFC822") and len(b) > 8 and isinstance(b[8], List):
        b[8] = canon_body(b[8])
        ext = 10
    if ext + 1 < len(b):
        b[ext + 1] = _disposition(b[ext + 1])
    return b


def _code_end(after: bytes) -> int:
    depth = 0
    i = 0
    while i < len(after):
        ch = after[i:i + 1]
        if ch == b'"':
            i += 1
            while i < len(after) and after[i:i + 1] != b'"':
                i += 2 if after[i:i + 1] == b"\\" else 1
        elif ch == b"[":
            depth += 1
        elif ch == b"]":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(after)


def verb(text: str) -> str:
    parts = text.split()
    if len(parts) < 2:
        return parts[0].upper() if parts else ""
    v = parts[1].upper()
    if v == "UID" and len(parts) > 2:
        return "UID " + parts[2].upper()
    return v


SPECIAL_USE = {"\\all", "\\archive", "\\drafts", "\\flagged", "\\junk", "\\sent", "\\trash"}
OPTIONAL_CHILD = {"\\haschildren", "\\hasnochildren"}
MARKS = {"\\marked", "\\unmarked"}
LIST_LINE = re.compile(r"^\* (LIST|LSUB) \(([^)]*)\)(.*)$")


def optional_list_attributes(cmd_text: str, lines: list[str]) -> list[str]:
    """Drop mailbox attributes a server MAY return unasked: \\Marked/\\Unmarked (RFC 3501
    §7.2.2), \\HasChildren/\\HasNoChildren unless RETURN (CHILDREN) was given (RFC 5258 §4: "a
    server MAY provide it even if the option is not specified"), and special-use attributes in
    LSUB and in extended LIST without a SPECIAL-USE option (RFC 6154 §2 defines them for LIST)."""
    upper = cmd_text.upper()
    extended = "RETURN" in upper or re.search(r"\bLIST\s+(\(|(\"[^\"]*\"|\S+)\s+\()", upper) is not None
    drop = set(MARKS)
    if "CHILDREN" not in upper:
        drop |= OPTIONAL_CHILD
    if verb(cmd_text) == "LSUB" or (extended and "SPECIAL-USE" not in upper):
        drop |= SPECIAL_USE
    out = []
    for ln in lines:
        m = LIST_LINE.match(ln)
        if m:
            attrs = [a for a in m.group(2).split() if a.lower() not in drop]
            ln = f"* {m.group(1)} ({' '.join(attrs)}){m.group(3)}"
        out.append(ln)
    return out


CONDSTORE_WORDS = re.compile(r"CONDSTORE|MODSEQ|CHANGEDSINCE|QRESYNC", re.I)


FETCH_LINE = re.compile(r"^\* \d+ FETCH ")
EXPUNGE_LINE = re.compile(r"^\* (\d+) EXPUNGE$")


def canonical_expunges(lines: list[str]) -> list[str]:
    """A run of EXPUNGE responses names messages by their numbers at that moment (RFC 3501
    §7.4.1): "2, 2" and "3, 2" remove the same messages. Each run is rewritten in the one
    canonical order, highest original number first."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not EXPUNGE_LINE.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        run = []
        while i < len(lines) and EXPUNGE_LINE.match(lines[i]):
            run.append(int(EXPUNGE_LINE.match(lines[i]).group(1)))
            i += 1
        survivors = list(range(1, max(run) + len(run) + 1))
        originals = [survivors.pop(n - 1) for n in run]
        out.extend(f"* {n} EXPUNGE" for n in sorted(originals, reverse=True))
    return out


def postprocess(cmd_text: str, lines: list[str], condstore: bool = True) -> list[str]:
    cmd_verb = verb(cmd_text)
    lines = canonical_expunges(lines)
    # An exact repeat of an untagged FETCH in one reply carries nothing new (ours sometimes
    # repeats an unsolicited flag update next to the solicited FETCH); keep one.
    seen_fetch: set[str] = set()
    deduped = []
    for ln in lines:
        if FETCH_LINE.match(ln):
            if ln in seen_fetch:
                continue
            seen_fetch.add(ln)
        deduped.append(ln)
    lines = deduped
    if cmd_verb in ("SELECT", "EXAMINE") and not condstore:
        # RFC 7162 §3.1.2.1 / §3.1: ours reports HIGHESTMODSEQ at every SELECT, Dovecot only once
        # the client used CONDSTORE; before that the client does not look at it.
        lines = [ln for ln in lines if not ln.startswith("* OK [HIGHESTMODSEQ ")]
    if cmd_verb in ("SELECT", "EXAMINE"):
        lines = [ln for ln in lines if ln != "* OK"]  # the untagged MAILBOXID (RFC 8474 §4), code dropped
    if cmd_verb in ("LIST", "LSUB"):
        lines = optional_list_attributes(cmd_text, lines)
    return order_untagged(cmd_verb, lines)


def order_untagged(cmd_verb: str, lines: list[str]) -> list[str]:
    """Reorder untagged responses where the RFC leaves the order free (tagged stays last)."""
    if cmd_verb not in ("CAPABILITY",):
        # RFC 3501 §7.2.1: a server MAY send an updated CAPABILITY list unasked (Dovecot does after
        # LOGIN when the client asked for capabilities before); the lists are compared separately.
        lines = [ln for ln in lines if ln != "* CAPABILITY <capabilities>"]
    untagged = [ln for ln in lines if ln.startswith("* ")]
    others = [ln for ln in lines if not ln.startswith("* ")]
    if cmd_verb in ("SELECT", "EXAMINE"):
        return sorted(untagged) + others
    if cmd_verb in ("LIST", "LSUB"):
        groups: list[list[str]] = []
        for ln in untagged:
            if ln.startswith("* LIST ") or ln.startswith("* LSUB ") or not groups:
                groups.append([ln])
            else:
                groups[-1].append(ln)
        return [ln for g in sorted(groups) for ln in g] + others
    return lines
