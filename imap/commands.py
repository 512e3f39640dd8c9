"""The command table: every IMAP command this server knows, in which states it is valid, its
handler and the parsers of its arguments. The one place to look for what a command does.

A handler is ``handler(s, tag, *values, uid=False)`` over the Session (imap/state.py), with one
value per argument parser (imap/args.py: ``parser(s, tokens) -> (value, rest)``); ``uid=True``
reaches only the commands in ``UID_COMMANDS``, run as ``UID <command>``. It returns (or, as a
coroutine, resolves to) ``(status, text)`` for the tagged response, or None when it sent that
itself (LOGOUT, STARTTLS, COMPRESS, an aborted FETCH).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from imap import args as a
from imap.op import acl, append, auth, compress, fetch, folders, listing, notify, quota, search, selected
from imap.state import AUTH, SELECTED, UNAUTH, Session
from imap.wire import Atom, ParseError

ANY = frozenset({UNAUTH, AUTH, SELECTED})
NOT_AUTH = frozenset({UNAUTH})
AUTHENTICATED = frozenset({AUTH, SELECTED})
IN_FOLDER = frozenset({SELECTED})


@dataclass(frozen=True, slots=True)
class Spec:
    handler: Callable
    parsers: tuple[Callable, ...]
    states: frozenset[str]


def uid(s: Session, tag: bytes, rest):
    """``UID FETCH|STORE|SEARCH|COPY|MOVE|EXPUNGE|SORT …``: the command, run on UIDs."""
    if not rest or not isinstance(rest[0], Atom):
        raise ParseError("UID needs a command")
    sub = bytes(rest[0]).upper()
    if sub not in UID_COMMANDS:
        raise ParseError("Unknown UID command")
    return s.conn.dispatch(tag, sub, rest[1:], True)


UID_COMMANDS = frozenset({b"FETCH", b"STORE", b"SEARCH", b"COPY", b"MOVE", b"EXPUNGE", b"SORT", b"THREAD"})

COMMANDS: dict[bytes, Spec] = {
    # any state (RFC 3501 §6.1), ID (RFC 2971)
    b"CAPABILITY": Spec(auth.capability, (), ANY),
    b"NOOP": Spec(auth.noop, (), ANY),
    b"LOGOUT": Spec(auth.logout, (), ANY),
    b"ID": Spec(auth.id_, (auth.arg_id,), ANY),
    # not authenticated (§6.2), SASL-IR (RFC 4959)
    b"STARTTLS": Spec(auth.starttls, (), NOT_AUTH),
    b"LOGIN": Spec(auth.login, (a.arg_astring, a.arg_astring), NOT_AUTH),
    b"AUTHENTICATE": Spec(auth.authenticate, (a.arg_atom, auth.arg_initial_response), NOT_AUTH),
    # authenticated (§6.3) and extensions valid there
    b"ENABLE": Spec(auth.enable, (a.arg_rest,), AUTHENTICATED),
    b"SELECT": Spec(selected.select, (a.arg_mailbox_as_sent, a.opt_list), AUTHENTICATED),
    b"EXAMINE": Spec(selected.examine, (a.arg_mailbox_as_sent, a.opt_list), AUTHENTICATED),
    b"CREATE": Spec(folders.create, (a.arg_mailbox, a.opt_list), AUTHENTICATED),
    b"DELETE": Spec(folders.delete, (a.arg_mailbox,), AUTHENTICATED),
    b"RENAME": Spec(folders.rename, (a.arg_mailbox, a.arg_mailbox), AUTHENTICATED),
    b"SUBSCRIBE": Spec(folders.subscribe, (a.arg_mailbox,), AUTHENTICATED),
    b"UNSUBSCRIBE": Spec(folders.unsubscribe, (a.arg_mailbox,), AUTHENTICATED),
    b"LIST": Spec(listing.list_, (a.arg_rest,), AUTHENTICATED),
    b"LSUB": Spec(listing.lsub, (a.arg_mailbox, a.arg_pattern), AUTHENTICATED),
    b"STATUS": Spec(folders.status, (a.arg_mailbox, a.arg_plist), AUTHENTICATED),
    b"NAMESPACE": Spec(folders.namespace, (), AUTHENTICATED),
    b"APPEND": Spec(append.append, (a.arg_mailbox, append.arg_messages), AUTHENTICATED),
    b"IDLE": Spec(selected.idle, (), AUTHENTICATED),
    b"GETQUOTAROOT": Spec(quota.getquotaroot, (a.arg_mailbox,), AUTHENTICATED),
    b"GETQUOTA": Spec(quota.getquota, (a.arg_mailbox,), AUTHENTICATED),
    b"SETQUOTA": Spec(quota.setquota, (a.arg_mailbox, a.arg_plist), AUTHENTICATED),
    b"COMPRESS": Spec(compress.compress, (compress.arg_mechanism,), AUTHENTICATED),
    b"NOTIFY": Spec(notify.notify, (a.arg_rest,), AUTHENTICATED),  # RFC 5465
    # ACL (RFC 4314) over unit-mailbox delegation
    b"MYRIGHTS": Spec(acl.myrights, (a.arg_mailbox,), AUTHENTICATED),
    b"GETACL": Spec(acl.getacl, (a.arg_mailbox,), AUTHENTICATED),
    b"LISTRIGHTS": Spec(acl.listrights, (a.arg_mailbox, a.arg_astring), AUTHENTICATED),
    b"SETACL": Spec(acl.setacl, (a.arg_mailbox, a.arg_astring, a.arg_astring), AUTHENTICATED),
    b"DELETEACL": Spec(acl.deleteacl, (a.arg_mailbox, a.arg_astring), AUTHENTICATED),
    # selected (§6.4), UNSELECT (RFC 3691), MOVE (RFC 6851), SORT (RFC 5256)
    b"CHECK": Spec(selected.check, (), IN_FOLDER),
    b"CLOSE": Spec(selected.close, (), IN_FOLDER),
    b"UNSELECT": Spec(selected.unselect, (), IN_FOLDER),
    b"EXPUNGE": Spec(selected.expunge, (a.arg_rest,), IN_FOLDER),
    b"SEARCH": Spec(search.search, (a.arg_rest,), IN_FOLDER),
    b"SORT": Spec(search.sort, (a.arg_rest,), IN_FOLDER),
    b"THREAD": Spec(search.thread_, (a.arg_rest,), IN_FOLDER),
    b"CANCELUPDATE": Spec(search.cancelupdate, (a.arg_rest,), IN_FOLDER),  # RFC 5267 §4.3.5
    b"FETCH": Spec(fetch.fetch, (a.arg_seqset, a.arg_fetchatt, a.opt_list), IN_FOLDER),
    b"STORE": Spec(selected.store, (a.arg_seqset, a.opt_list, a.arg_atom, a.arg_flaglist), IN_FOLDER),
    b"COPY": Spec(selected.copy, (a.arg_seqset, a.arg_mailbox), IN_FOLDER),
    b"MOVE": Spec(selected.move, (a.arg_seqset, a.arg_mailbox), IN_FOLDER),
    b"UID": Spec(uid, (a.arg_rest,), IN_FOLDER),
}
