"""The state of one IMAP session, in one typed object that every command handler receives.

``Session`` is what RFC 3501 calls the connection state (not authenticated → authenticated →
selected → logout) and what the session has agreed with its client: who it acts as, which folder
is selected and its sequence-number view, which extensions were ENABLEd. Handlers
(``imap/op/*.py``, listed in ``imap/commands.py``) are plain functions ``handler(s, tag, *args)``
over it; the bytes go through ``s.conn`` (``Connection``: the Twisted protocol in imap/server.py,
which owns framing, literals, TLS and compression).

Everything here runs on the reactor thread; handlers hand store calls to threads themselves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from imap import mutf7
from imap.wire import astring, utf8_astring

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from imap.op.notify import NotifyState
    from imap.service import ServerContext
    from imap.session import SelectedView
    from storage.api import Account

log = logging.getLogger(__name__)

#: RFC 3501 §3 connection states (the names Twisted's dispatch used: ``auth_SELECT`` …)
UNAUTH, AUTH, SELECTED, LOGOUT = "unauth", "auth", "select", "logout"


class Connection(Protocol):
    """What handlers need of the protocol object that carries the session (imap/server.py)."""

    closed: bool
    autologout: float
    transport: object

    def write_lines(self, lines: list[bytes]) -> None:
        """Send response lines (CRLF added); nothing once the connection is closed."""

    def write_now(self, data: bytes) -> None:
        """Send bytes as they are, straight to the socket when nothing is queued before them."""

    def respond(self, status: bytes, tag: bytes | None, text: bytes) -> None:
        """Send a tagged (or, without a tag, untagged) status response now."""

    def next_line(self) -> Deferred:
        """The next line the client sends (AUTHENTICATE continuations, IDLE's DONE)."""

    def is_secure(self) -> bool: ...

    def start_tls(self) -> None:
        """Drop anything pipelined after STARTTLS and begin the handshake."""

    @property
    def compressing(self) -> bool: ...

    def start_compress(self) -> None:
        """From now on both directions are deflated (RFC 4978)."""

    def dispatch(self, tag: bytes, name: bytes, args: list, uid: bool = False): ...

    @property
    def in_command(self) -> bool:
        """A command is in progress (IDLE included): nothing may be written unasked."""

    def hold(self) -> None:
        """Act as if a command were in progress (NOTIFY output): the client's next waits."""

    def release(self) -> None:
        """End ``hold``; commands that arrived meanwhile run now."""


@dataclass(eq=False)  # identity: sessions are keys of the change hub's watcher sets
class Session:
    ctx: ServerContext  # shared by every connection: settings, store, auth, hub, quota, org
    conn: Connection
    max_literal: int  # APPENDLIMIT
    state: str = UNAUTH
    account: Account | None = None  # who the session acts as
    actor: Account | None = None  # who proved a password (differs after SASL PLAIN with an authzid)
    quota_resources: frozenset[bytes] = frozenset()  # RFC 9208 resources of the account
    selected: SelectedView | None = None
    enabled: set[bytes] = field(default_factory=set)  # RFC 5161 ENABLE
    idling: bool = False
    notify: NotifyState | None = None  # once the client sent NOTIFY (RFC 5465)

    # -- output --------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self.conn.closed

    def write_lines(self, lines: list[bytes]) -> None:
        self.conn.write_lines(lines)

    def untagged(self, text: bytes) -> None:
        self.conn.write_lines([b"* " + text])

    def wire_name(self, name: str) -> bytes:
        """A folder name as this session's client expects it on the wire: modified UTF-7, or
        UTF-8 once the client enabled UTF8=ACCEPT (RFC 6855 §3) or IMAP4rev2 (RFC 9051 §5.1)."""
        if self.utf8_names:
            return utf8_astring(name)
        return astring(mutf7.encode(name))

    # -- extensions ----------------------------------------------------------------------------
    @property
    def rev2(self) -> bool:
        """ENABLE IMAP4rev2 (RFC 9051 §6.3.1): no \\Recent, SEARCH answers ESEARCH, UTF-8 names."""
        return b"IMAP4rev2" in self.enabled

    @property
    def utf8_names(self) -> bool:
        """Mailbox names travel as UTF-8 (RFC 6855 §3, RFC 9051 §5.1), not modified UTF-7."""
        return b"UTF8=ACCEPT" in self.enabled or b"IMAP4rev2" in self.enabled

    @property
    def condstore(self) -> bool:
        return b"CONDSTORE" in self.enabled

    def enable_condstore(self) -> None:
        """RFC 7162 §3.1: any CONDSTORE-enabling command turns it on for the session."""
        self.enabled.add(b"CONDSTORE")

    # -- the selected folder -------------------------------------------------------------------
    def deselect(self) -> None:
        sv, self.selected = self.selected, None
        if sv is not None:
            self.ctx.hub.unwatch(sv.folder_id, self)
        if self.state == SELECTED:
            self.state = AUTH

    def flush_updates(self, *, allow_expunge: bool) -> None:
        """Tell the client what changed in the selected folder (as far as it may be told now)."""
        if self.selected is not None:
            self.write_lines(self.selected.flush(
                allow_expunge=allow_expunge, with_modseq=self.condstore, vanished=b"QRESYNC" in self.enabled
            ))

    def changes_arrived(self, sv, changes) -> None:
        """From the ChangeHub, on the reactor thread: another commit touched our folder."""
        if self.selected is sv:
            sv.apply(changes)
            self.updates_waiting()

    def updates_waiting(self) -> None:
        """The selected view holds news for the client: told at once while it IDLEs, or as
        NOTIFY asked (RFC 5465: then NOTIFY alone decides what is told unasked, IDLE too)."""
        if self.notify is not None:
            self.notify.selected_changed()
        elif self.idling and self.selected is not None and self.selected.contexts:
            self._refresh_then_flush()
        elif self.idling:
            self.flush_updates(allow_expunge=True)

    def _refresh_then_flush(self) -> None:
        """While IDLE: re-evaluate the updating search contexts (RFC 5267 §4.3), then tell
        everything at once, if the client still idles (else the next command's flush tells)."""
        from twisted.internet import defer

        from imap.op.search import refresh_contexts

        def done(_):
            if self.idling:
                self.flush_updates(allow_expunge=True)

        d = defer.ensureDeferred(refresh_contexts(self))
        d.addCallback(done)
        d.addErrback(lambda f: log.error("search context update failed: %s", f.getErrorMessage()))

    def shared_selection(self) -> tuple[int, int] | None:
        """(who reads, whose folder) while another account's folder is selected (a unit mailbox)."""
        sv, actor = self.selected, self.actor
        target = getattr(sv, "target", None)
        if sv is None or actor is None or target is None or target.owner_id == actor.id:
            return None
        return actor.id, target.owner_id
