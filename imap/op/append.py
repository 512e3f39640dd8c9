"""APPEND (RFC 3501 §6.3.11) with MULTIAPPEND (RFC 3502), CATENATE (RFC 4469), binary literals
(RFC 3516 literal8) and RFC 6855's ``UTF8 (~{n}…)``.

All messages of one APPEND are stored in one transaction or none is (``append_many``: the
quota is checked for their sum, the UIDs are consecutive, APPENDUID names them as a set).
A message is a literal, stored with bare LFs made CRLF (RFC 3501 §4.3), or a literal8, stored
byte for byte as sent, or CATENATE's concatenation of TEXT literals and URLs naming messages or
sections the user may read (imap/imapurl.py).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

from twisted.internet.threads import deferToThread

from imap import imapurl
from imap.access import get_folder
from imap.args import _first, decode_mailbox, normalize_mailbox, opt_datetime, opt_flaglist
from imap.errors import Refused
from imap.fetchparse import parse_one
from imap.op.quota import quota_limit
from imap.op.selected import poll_changes
from imap.sections import NoSuchPart, apply_partial, filter_fields, section_range
from imap.session import format_set
from imap.state import Session
from imap.wire import Atom, FileLiteral, LiteralString, ParseError, String
from storage.api import ROW_BLOB, ROW_SIZE, NewMessage
from storage.errors import NoPerm, NotFound
from storage.mime.crlf import file_to_crlf, to_crlf

OK, NO = b"OK", b"NO"
#: A catenated message above this is assembled in a temporary file, not in memory.
IN_MEMORY = 1024 * 1024


@dataclass(frozen=True)
class Url:
    """A CATENATE ``URL`` part, resolved when the command runs."""

    text: str


@dataclass
class Message:
    flags: frozenset[str]
    when: object  # datetime | None
    parts: list  # bytes | FileLiteral | Url: one part unless CATENATE
    binary: bool = False  # sent as literal8: stored exactly as sent


# -- parsing -------------------------------------------------------------------------------
def arg_messages(s: Session, tokens: list):
    """``1*(SP [flag-list] [SP date-time] SP append-data)`` (RFC 3502, RFC 4466 §2.1)."""
    messages = []
    rest = tokens
    while rest or not messages:
        flags, rest = opt_flaglist(s, rest)
        when, rest = opt_datetime(s, rest)
        parts, binary, rest = _append_data(rest)
        messages.append(Message(flags, when, parts, binary))
    return messages, []


def _is_literal(tok) -> bool:
    return isinstance(tok, (LiteralString, FileLiteral))


def _append_data(tokens: list):
    tok, rest = _first(tokens, "message literal")
    if isinstance(tok, Atom) and tok == b"~":
        lit, rest = _first(rest, "literal8")
        if not _is_literal(lit):
            raise ParseError("Expected ~{n} literal8")
        return [lit], True, rest
    if isinstance(tok, Atom) and tok.upper() == b"UTF8":
        inner, rest = _first(rest, "UTF8 (literal8)")
        if not (isinstance(inner, list) and len(inner) == 2 and inner[0] == b"~" and _is_literal(inner[1])):
            raise ParseError("Expected UTF8 (~{n} message)")
        return [inner[1]], False, rest
    if isinstance(tok, Atom) and tok.upper() == b"CATENATE":
        cat, rest = _first(rest, "CATENATE parts")
        if not isinstance(cat, list) or not cat:
            raise ParseError("Expected CATENATE (parts)")
        return _cat_parts(cat), False, rest
    if not isinstance(tok, (String, FileLiteral)):
        raise ParseError("Expected a literal")
    return [tok], False, rest


def _cat_parts(tokens: list) -> list:
    """``cat-part *(SP cat-part)``: ``TEXT literal`` / ``URL astring`` (RFC 4469 §5)."""
    parts = []
    while tokens:
        kind, tokens = _first(tokens, "cat-part")
        value, tokens = _first(tokens, "cat-part value")
        name = bytes(kind).upper() if isinstance(kind, Atom) else b""
        if name == b"TEXT" and _is_literal(value):
            parts.append(value)
        elif name == b"URL" and isinstance(value, (Atom, String)):
            try:
                parts.append(Url(bytes(value).decode("ascii")))
            except UnicodeDecodeError:
                raise ParseError("URL must be ASCII") from None
        else:
            raise ParseError("Expected TEXT literal or URL string")
    return parts


# -- the command ---------------------------------------------------------------------------
async def append(s: Session, tag: bytes, name, messages: list[Message]):
    try:
        target, folder, _rights = await get_folder(s, name, "head", "append")
    except NotFound:
        return NO, b"[TRYCREATE] No such mailbox"
    limit = await quota_limit(s, target.owner_id)
    for msg in messages:
        if any(isinstance(p, Url) for p in msg.parts):
            msg.parts = [await _resolve(s, p) if isinstance(p, Url) else p for p in msg.parts]
        if sum(_size(p) for p in msg.parts) > s.max_literal:
            return NO, b"[TOOBIG] Message larger than the server accepts"
    store = s.ctx.store
    blobs = await deferToThread(_put_all, store, messages)
    uidvalidity, uids = await deferToThread(
        store.messages.append_many, folder.id, [NewMessage(b, m.flags, m.when) for b, m in zip(blobs, messages)],
        quota_limit=limit,
    )
    if s.selected is not None and s.selected.folder_id == folder.id:
        await poll_changes(s)
    return OK, b"[APPENDUID %d %s] APPEND completed" % (uidvalidity, format_set(uids))


def _size(part) -> int:
    return part.size if isinstance(part, FileLiteral) else len(part)


def _put_all(store, messages: list[Message]) -> list:
    """Each message stored as a blob (worker thread)."""
    return [_put_one(store, m) for m in messages]


def _put_one(store, m: Message):
    if len(m.parts) == 1:
        (part,) = m.parts
        if isinstance(part, _Resolved):
            return store.messages.put_blob(bytes(part))
        if m.binary:  # literal8: byte for byte as sent (RFC 3516 §4.3)
            return store.messages.put_blob(part.file if isinstance(part, FileLiteral) else bytes(part))
        if not isinstance(part, FileLiteral):
            return store.messages.put_blob(to_crlf(bytes(part)))
        source = file_to_crlf(part.file)
        try:
            return store.messages.put_blob(source)
        finally:
            if source is not part.file:
                source.close()
    pieces = [p if isinstance(p, FileLiteral) else (bytes(p) if isinstance(p, _Resolved) else to_crlf(bytes(p))) for p in m.parts]
    total = sum(_size(p) for p in pieces)
    if total <= IN_MEMORY and not any(isinstance(p, FileLiteral) for p in pieces):
        return store.messages.put_blob(b"".join(pieces))
    with tempfile.TemporaryFile(prefix="imap-catenate-") as out:
        for p in pieces:
            if isinstance(p, FileLiteral):
                source = file_to_crlf(p.file)
                try:
                    while chunk := source.read(IN_MEMORY):
                        out.write(chunk)
                finally:
                    if source is not p.file:
                        source.close()
            else:
                out.write(p)
        out.flush()
        out.seek(0)
        return store.messages.put_blob(out)


class _Resolved(bytes):
    """The bytes a CATENATE URL named: stored as they are (TEXT parts get CRLF line ends)."""


# -- CATENATE URLs -------------------------------------------------------------------------
def _bad_url(url: str) -> Refused:
    shown = "".join(c for c in url if 0x20 <= ord(c) < 0x7F and c != "]")[:200]
    return Refused(b"[BADURL " + shown.encode("ascii") + b"] Cannot resolve the URL")


async def _resolve(s: Session, url: Url) -> _Resolved:
    """The bytes an IMAP URL names, if they are in a mailbox this session may read."""
    try:
        u = imapurl.parse(url.text)
        if u.host is not None and not _our_host(s, u.host):
            raise imapurl.BadUrl("another server")
        if u.user is not None and u.user.lower() not in {s.account.address.lower(), s.actor.address.lower()}:
            raise imapurl.BadUrl("another user")
        if u.mailbox is None:
            sv = s.selected
            if sv is None:
                raise imapurl.BadUrl("relative URL without a selected mailbox")
            _target, folder, _rights = await get_folder(s, sv.target.client_name(), "read", "catenate")
        else:
            name = normalize_mailbox(decode_mailbox(u.mailbox, True))
            _target, folder, _rights = await get_folder(s, name, "read", "catenate")
        if u.uidvalidity is not None and u.uidvalidity != folder.uidvalidity:
            raise imapurl.BadUrl("UIDVALIDITY changed")
        item = parse_one(b"BODY.PEEK[" + u.section + b"]")
        data = await deferToThread(_read_section, s.ctx.store, folder.id, u.uid, item, u.partial)
    except (imapurl.BadUrl, ParseError, Refused, NotFound, NoPerm, NoSuchPart):
        raise _bad_url(url.text) from None
    return _Resolved(data)


def _our_host(s: Session, host: str) -> bool:
    local = getattr(s.conn.transport.getHost(), "host", None)
    return host.strip("[]") in {s.ctx.settings.hostname.lower(), "localhost", local}


def _read_section(store, folder_id: int, uid: int, item, partial) -> bytes:
    rows = [r for batch in store.messages.fetch_rows(folder_id, [uid], blob=True) for r in batch]
    if not rows:
        raise NotFound("no such message")
    sha, size = rows[0][ROW_BLOB], rows[0][ROW_SIZE]
    if item.part or item.text:
        structure = store.messages.body_meta([sha], frozenset({"structure"})).get(sha, (None, None))[1]
        if structure is None:
            raise NotFound("no structure")
        start, end = section_range(structure, size, item)
    else:
        start, end = 0, size
    data = store.messages.read_blob(sha, start, end - start)
    if item.text.startswith(b"HEADER.FIELDS"):
        data = filter_fields(data, item.fields, item.text == b"HEADER.FIELDS")
    if partial is not None:
        data = apply_partial(data, partial)
    return data
