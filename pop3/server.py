"""The POP3 protocol (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 SASL) over the store.

Subclasses Twisted's ``POP3`` for its transport plumbing (``sendLine``, the autologout timer) but
replaces its input loop and command dispatch, which are unsafe (docs/libraries.md, Twisted POP3):

- Input is split here, one command at a time: while a command is running (a thread hop, a RETR
  being streamed) further pipelined lines wait in the buffer and reading from the socket pauses
  once the buffer is large, so PIPELINING needs no unbounded queue.
- STLS discards whatever the client sent after it in plaintext (command injection, as with
  STARTTLS in IMAP and SMTP).
- An unknown or malformed command gets ``-ERR`` and the session continues; an unexpected error is
  logged and answered ``-ERR [SYS/TEMP]``, never with an exception name.

The AUTHORIZATION commands live in ``pop3/auth.py``, the TRANSACTION ones in
``pop3/transaction.py``.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, threads
from twisted.mail import pop3

from pop3 import replies as R
from pop3.auth import AuthorizationCommands
from pop3.maildrop import Maildrop, MaildropLocks
from pop3.stream import RunInThread
from pop3.transaction import TransactionCommands
from storage.api import Store

log = logging.getLogger(__name__)

AUTHORIZATION, TRANSACTION, UPDATE = "AUTHORIZATION", "TRANSACTION", "UPDATE"
#: Commands and the states that accept them. Anything else is "-ERR Unknown command".
COMMAND_STATES = {
    "CAPA": {AUTHORIZATION, TRANSACTION},
    "QUIT": {AUTHORIZATION, TRANSACTION},
    "USER": {AUTHORIZATION},
    "PASS": {AUTHORIZATION},
    "AUTH": {AUTHORIZATION},
    "STLS": {AUTHORIZATION},
    "STAT": {TRANSACTION},
    "LIST": {TRANSACTION},
    "UIDL": {TRANSACTION},
    "RETR": {TRANSACTION},
    "TOP": {TRANSACTION},
    "DELE": {TRANSACTION},
    "RSET": {TRANSACTION},
    "NOOP": {TRANSACTION},
}
#: RFC 2449 limits commands to 255 octets; AUTH PLAIN initial responses may be longer.
MAX_LINE = 8192
#: Unprocessed pipelined input kept before the socket stops being read.
MAX_PENDING_INPUT = 64 * 1024


@dataclass(frozen=True)
class Pop3Context:
    """What every POP3 session of one listener shares; built by ``pop3_service.start_pop3``."""

    store: Store
    auth: Any  # mailserver.accounts.auth.Authenticator: authenticate(user, password) -> Account | None
    locks: MaildropLocks
    tls: Any | None  # twisted.internet.ssl.CertificateOptions for STLS; None: no STLS
    implicit_tls: bool  # pop3s: the connection is TLS from the first byte
    allow_plaintext_auth_on_loopback: bool
    autologout: int  # seconds of inactivity before the session is closed (RFC 1939: >= 600)
    run_in_thread: RunInThread = threads.deferToThread
    guard: Any | None = None  # mailserver.sessions.SessionGuard: ends sessions whose login no longer holds
    logins: Any | None = None  # mailserver.accounts.guard.LoginGuard: delays, blocks and logs logins
    limits: Any | None = None  # mailserver.accounts.guard.ConnectionLimits: connections per client address
    reactor: Any | None = None  # for the login guard's timers
    passwords: Any | None = None  # config Passwords: R-PASS-1 at login (enforce_initial_change)
    password_url: str | None = None  # the portal's password page, named in that refusal


class POP3Server(AuthorizationCommands, TransactionCommands, pop3.POP3):
    """One POP3 session. Handlers are ``cmd_<VERB>(args: bytes)``; a Deferred result keeps the
    session busy (no other command runs) until it fires."""

    protocol_name = "pop3"  # mailserver/sessions.py counts sessions by it

    def __init__(self, ctx: Pop3Context) -> None:
        self.ctx = ctx
        self.state = AUTHORIZATION
        self.maildrop: Maildrop | None = None
        self.account_id: int | None = None  # set once the maildrop lock is held
        self.tls_active = ctx.implicit_tls
        self.peer_is_loopback = False
        self._input = b""
        self._discarding = False  # inside an over-long line: drop bytes up to its end
        self._busy = False
        self._processing = False
        self._reading_paused = False
        self._closing = False
        self._updating = False  # QUIT's commit is in flight: keep the lock until it ends
        self._user: bytes | None = None
        self.auth_failures = 0
        self._sasl_pending = False
        self._counted: str | None = None  # the client address counted in ctx.limits

    # -- connection ---------------------------------------------------------------------------
    def connectionMade(self) -> None:
        if self.ctx.limits is not None:
            host = self.peer_host()
            if not self.ctx.limits.acquire("pop3", host):
                self.transport.write(R.ERR_SYS_TEMP_CONNECTIONS + b"\r\n")
                self.close()
                return
            self._counted = host
        self.peer_is_loopback = _is_loopback(self.transport.getPeer())
        _no_delay(self.transport)
        self.reply(R.GREETING)
        self.setTimeout(self.ctx.autologout)

    def connectionLost(self, reason=None) -> None:
        self._closing = True
        if self._counted is not None:
            self.ctx.limits.release("pop3", self._counted)
            self._counted = None
        self.setTimeout(None)
        if self.ctx.guard is not None:
            self.ctx.guard.unregister(self)
        if not self._updating:
            self.release_maildrop()

    def timeoutConnection(self) -> None:
        log.info("pop3 autologout peer=%s", self.transport.getPeer())
        self.reply(R.ERR_TIMEOUT)
        self.close()

    def reply(self, line: bytes) -> None:
        if not self._closing:
            self.transport.write(line + b"\r\n")

    def close(self) -> None:
        self._closing = True
        self._input = b""
        self.transport.loseConnection()

    def end_session(self, reason: str) -> None:
        """The login no longer holds (mailserver/sessions.py). POP3 has no unsolicited reply: close;
        not having reached UPDATE, the session deletes nothing (RFC 1939 section 6)."""
        log.info("pop3 session ended account=%s: %s", self.account_id, reason)
        self.close()

    def enter_transaction(self, maildrop: Maildrop) -> None:
        self.maildrop = maildrop
        self.state = TRANSACTION

    def release_maildrop(self) -> None:
        if self.account_id is not None:
            unlock = self.ctx.locks.release(self.account_id)
            if unlock is not None:  # the database's part of the lock (several processes)
                self.ctx.run_in_thread(unlock).addErrback(
                    lambda f: log.error("pop3 maildrop unlock failed: %s", f.getErrorMessage()))
            self.account_id = None
        self.maildrop = None

    def peer_host(self) -> str:
        """The client's address: the PROXY header's when the connection came through a proxy."""
        return str(getattr(self.transport.getPeer(), "host", ""))

    def plaintext_auth_allowed(self) -> bool:
        return self.tls_active or (self.ctx.allow_plaintext_auth_on_loopback and self.peer_is_loopback)

    # -- input --------------------------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self._input += data
        self._process()

    def _process(self) -> None:
        if self._processing:
            return  # a command finished synchronously: the running loop below carries on
        self._processing = True
        try:
            while not (self._busy or self._closing):
                line = self._next_line()
                if line is None:
                    break
                self._execute(line)
        finally:
            self._processing = False
        self._flow_control()

    def _next_line(self) -> bytes | None:
        while True:
            end = self._input.find(b"\n")
            if end < 0:
                if len(self._input) > MAX_LINE:
                    self._input = b""
                    self._discarding = True
                return None
            line, self._input = self._input[:end], self._input[end + 1 :]
            if self._discarding or len(line) > MAX_LINE:
                self._discarding = False
                self.reply(R.ERR_TOO_LONG)
                continue
            return line[:-1] if line.endswith(b"\r") else line

    def _flow_control(self) -> None:
        """Stop reading the socket while a client pipelines far ahead of us."""
        want_pause = self._busy and len(self._input) > MAX_PENDING_INPUT
        if want_pause != self._reading_paused and not self._closing:
            self._reading_paused = want_pause
            if want_pause:
                self.transport.pauseProducing()
            else:
                self.transport.resumeProducing()

    def _execute(self, line: bytes) -> None:
        self.resetTimeout()
        if self._sasl_pending:
            self._sasl_pending = False
            self._run(self.sasl_response, line)
            return
        verb, _, args = line.partition(b" ")
        name = verb.upper().decode("ascii", "replace")
        states = COMMAND_STATES.get(name)
        if states is None:
            self.reply(R.ERR_UNKNOWN)
        elif self.state not in states:
            self.reply(R.ERR_STATE)
        else:
            self._run(getattr(self, "cmd_" + name), args)

    def _run(self, handler, args: bytes) -> None:
        try:
            result = handler(args)
        except Exception:
            log.exception("pop3 command failed")
            self.reply(R.ERR_SYS_TEMP)
            return
        if isinstance(result, defer.Deferred):
            self._busy = True
            result.addErrback(self._unexpected)
            result.addBoth(self._idle)

    def _unexpected(self, failure) -> None:
        log.error("pop3 command failed", exc_info=(failure.type, failure.value, failure.getTracebackObject()))
        self.reply(R.ERR_SYS_TEMP)

    def _idle(self, _ignored) -> None:
        self._busy = False
        if not self._closing:
            self._process()

    def discard_pipelined_input(self) -> None:
        """STLS: nothing sent before the handshake may be read as a command after it."""
        self._input = b""
        self._discarding = False

    # -- commands valid in both states --------------------------------------------------------
    def cmd_CAPA(self, args: bytes) -> None:
        lines = [R.CAPA, b"TOP", b"UIDL", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING"]
        if self.state == AUTHORIZATION:
            if self.plaintext_auth_allowed():
                lines += [b"USER", b"SASL PLAIN"]
            if self.ctx.tls is not None and not self.tls_active:
                lines.append(b"STLS")
        lines.append(b".")
        self.transport.write(b"\r\n".join(lines) + b"\r\n")

    def cmd_QUIT(self, args: bytes) -> defer.Deferred | None:
        if self.state != TRANSACTION or self.maildrop is None or not self.maildrop.pending_deletions:
            self.reply(R.BYE)
            self.release_maildrop()
            self.close()
            return None
        self.state = UPDATE
        self._updating = True
        d = self.ctx.run_in_thread(self.maildrop.commit, self.ctx.store)
        d.addCallbacks(self._updated, self._update_failed)
        return d

    def _updated(self, removed: int) -> None:
        self.reply(b"+OK Bye, %d messages deleted" % removed)
        self._end_update()

    def _update_failed(self, failure) -> None:
        log.error("pop3 QUIT could not remove messages",
                  exc_info=(failure.type, failure.value, failure.getTracebackObject()))
        self.reply(R.ERR_SYS_TEMP)
        self._end_update()

    def _end_update(self) -> None:
        self._updating = False
        self.release_maildrop()
        self.close()


def _no_delay(transport) -> None:
    """TCP_NODELAY on the session's socket, for pop3 and pop3s alike (a TLS transport passes the
    call on to the TCP one; STLS keeps the socket). Why: a response larger than one write (RETR
    of a message above pop3.stream.CHUNK_SIZE) ends with a small write, which Nagle's algorithm
    held until the client's delayed ACK of the previous one, ~40 ms per message. Transports
    without a socket (the unit tests' StringTransport) have nothing to set."""
    set_no_delay = getattr(transport, "setTcpNoDelay", None)
    if set_no_delay is not None:
        set_no_delay(True)


def _is_loopback(peer) -> bool:
    host = getattr(peer, "host", None)
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback
