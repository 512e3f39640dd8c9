"""The IMAP4rev1 protocol: Twisted's IMAP4Server as the framing layer under our commands.

Kept from Twisted: the protocol class and TimeoutMixin autologout. Replaced, because Twisted's
versions are wrong in ways that break real clients: line and literal framing (whole commands are
assembled first; LITERAL+; over-long lines answered with BAD instead of a dropped connection;
APPEND literals spooled to disk and refused with [TOOBIG] before they are read; STARTTLS drops
pipelined plaintext), the dispatch (imap/commands.py: an explicit table instead of Twisted's
``state_COMMAND`` attributes) and every command handler (imap/op/*.py, over the one Session
object of imap/state.py).

Commands run one at a time per connection; pipelined input waits in the buffer. Handlers are
coroutines returning ``(status, text)`` for the tagged response, or None when they sent it.
"""

from __future__ import annotations

import io
import logging
import tempfile
import time

from twisted.internet import defer, interfaces, tcp
from twisted.mail.imap4 import IMAP4Server
from twisted.python import failure

from imap.commands import COMMANDS
from imap.compress import DeflateTransport, Inflater
from imap.errors import SERVER_BUG, Refused, response_for
from imap.op.auth import greeting
from imap.op.search import refresh_contexts
from imap.op.selected import recent_settled
from imap.searchparse import BadCharset
from imap.state import Session
from imap.wire import Atom, Command, FileLiteral, ParseError, literal_marker, tokenize
from mailserver.policy import metrics
from storage.errors import StoreError

log = logging.getLogger(__name__)

#: Literals above this go to a temporary file (APPEND); other commands may not exceed the line limit.
SPOOL_IN_MEMORY = 1024 * 1024
#: Commands whose responses may not carry EXPUNGE (RFC 3501 §7.4.1) unless sent as UID commands.
NO_EXPUNGE_REPORT = {b"FETCH", b"STORE", b"SEARCH"}
#: commands after which updating search contexts need no re-evaluation (they change nothing)
READ_ONLY = {b"SEARCH", b"SORT", b"THREAD", b"CANCELUPDATE"}
TIMED = frozenset({b"FETCH", b"SEARCH"})  # their latency is a histogram on /metrics


def _no_delay(transport) -> None:
    """TCP_NODELAY; a PROXY or TLS wrapper passes the call on to the TCP transport when it can."""
    set_no_delay = getattr(transport, "setTcpNoDelay", None)
    if set_no_delay is not None:
        try:
            set_no_delay(True)
        except AttributeError:  # a wrapper whose inner transport has none
            pass


class IMAPServer(IMAP4Server):
    IDENT = b"IMAP4rev1 ready"
    protocol_name = "imap"  # mailserver/sessions.py counts sessions by it

    def __init__(self, ctx) -> None:
        """``ctx`` is the ServerContext (imap/service.py) shared by all connections."""
        IMAP4Server.__init__(self, chal={}, contextFactory=ctx.tls)
        self.sc = ctx
        limits = ctx.settings.limits
        self.max_line = limits.imap_max_line
        self.max_literal = min(limits.imap_max_literal, limits.max_message_size)
        self.s = Session(ctx, self, self.max_literal)
        # RFC 3501 §5.4 autologout: counts while the client is silent, never while one of its
        # commands is being worked on (waiting for a thread, a store call, a slow consumer).
        self.autologout = limits.imap_autologout_unauth
        self.timeOut = self.autologout
        self._buf = bytearray()
        self._cmd: Command | None = None
        self._cmd_len = 0
        self._lit_need = 0
        self._lit_size = 0
        self._lit_sink = None
        self._lit_discard = False
        self._skip_line = False
        self._busy = False
        self._processing = False
        self._line_waiter: defer.Deferred | None = None
        self.closed = False
        self._paused = False
        self._secure: bool | None = None  # fixed when COMPRESS wraps the transport (hiding ISSLTransport)
        self._inflater: Inflater | None = None  # once COMPRESS is active
        self._counted: str | None = None  # the client address counted in ctx.limits
        self._refused = False  # over the connection limit: closed at once

    # -- connection ----------------------------------------------------------------------------
    def connectionMade(self) -> None:
        limits = self.sc.limits
        if limits is not None:
            host = str(getattr(self.transport.getPeer(), "host", ""))
            if not limits.acquire("imap", host):
                self.closed = self._refused = True
                self.transport.write(b"* BYE [UNAVAILABLE] Too many connections from your address\r\n")
                self.transport.loseConnection()
                return
            self._counted = host
        IMAP4Server.connectionMade(self)
        # A response is often two writes (untagged data, then the tagged line): with Nagle's
        # algorithm the second waited for the client's delayed ACK, ~40 ms per command.
        _no_delay(self.transport)
        self.sc.connections.add(self)

    def connectionLost(self, reason=None) -> None:
        if self._counted is not None:
            self.sc.limits.release("imap", self._counted)
            self._counted = None
        if self._refused:
            return  # refused at connectionMade: nothing was started
        self.closed = True
        self.sc.connections.discard(self)
        if self.sc.guard is not None:
            self.sc.guard.unregister(self)
        self.s.deselect()
        if self.s.notify is not None:
            self.s.notify.stop()
        if self._line_waiter is not None:
            d, self._line_waiter = self._line_waiter, None
            d.errback(failure.Failure(ConnectionError("connection lost")))
        self._drop_literal()
        IMAP4Server.connectionLost(self, reason)

    def timeoutConnection(self) -> None:
        self.write_lines([b"* BYE Autologout; idle for too long"])
        self.transport.loseConnection()

    def sendServerGreeting(self) -> None:
        greeting(self.s, self.IDENT)

    def shared_selection(self) -> tuple[int, int] | None:
        """(who reads, whose folder) while another account's folder is selected (a unit mailbox):
        mailserver/sessions.py asks whether the read right still holds."""
        return self.s.shared_selection()

    def end_session(self, reason: str) -> None:
        """The login no longer holds (mailserver/sessions.py): say so and close (RFC 3501 7.1.5)."""
        self.write_lines([b"* BYE [UNAVAILABLE] Session ended: " + reason.encode("ascii", "replace")])
        self.transport.loseConnection()

    def write_lines(self, lines) -> None:
        if lines and not self.closed:
            self.write_now(b"\r\n".join(lines) + b"\r\n")

    def write_now(self, data: bytes) -> None:
        if not self._send_now(data):
            self.transport.write(data)

    def _send_now(self, data: bytes) -> bool:
        """Send straight to the socket when nothing is queued before it (plain TCP only).

        Why: ``transport.write`` queues, registers the socket with the event loop, sends on the
        next loop turn and unregisters it: three system calls and much Python per write. Telling
        1,000 IDLE clients of a group message is 1,000 such small writes in one reactor turn
        (bench/fanout.py); sending at once costs one call each. Anything not sent whole, and any
        TLS or COMPRESS connection, goes through the transport as before, in order."""
        t = self.transport
        if (not isinstance(t, tcp.Server) or t.TLS or t.dataBuffer or t._tempDataBuffer or t.disconnecting
                or not t.connected or getattr(t, "socket", None) is None):
            return False
        try:
            sent = t.socket.send(data)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return False  # the transport's own write reports the failure as it always has
        if sent < len(data):
            t.write(data[sent:])
        return True

    def is_secure(self) -> bool:
        if self._secure is not None:
            return self._secure
        return self.startedTLS or interfaces.ISSLTransport(self.transport, None) is not None

    def start_tls(self) -> None:
        """After the tagged OK to STARTTLS: anything pipelined after the command arrived in plain
        text, so it is dropped (command injection), then the handshake begins."""
        self._buf.clear()
        self._skip_line = False
        self.transport.startTLS(self.sc.tls)
        self.startedTLS = True

    @property
    def compressing(self) -> bool:
        return self._inflater is not None

    def start_compress(self) -> None:
        """After the tagged OK to COMPRESS DEFLATE (RFC 4978)."""
        self._secure = self.is_secure()
        self.transport = DeflateTransport(self.transport)
        self._inflater = Inflater()
        # Whatever followed the command is already compressed (clients may not pipeline it).
        self._inflater.pending, self._buf[:] = bytes(self._buf), b""

    def _inflate_more(self) -> None:
        """Inflate while less than a line limit's worth waits to be parsed: a small compressed
        packet cannot expand into unbounded memory."""
        if not self._inflater.inflate_into(self._buf, 2 * self.max_line):
            self.write_lines([b"* BYE Corrupt compressed data"])
            self.transport.loseConnection()

    # -- framing -------------------------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        if self._inflater is not None:
            self._inflater.pending += data
        else:
            self._buf += data
        if self._busy and self._line_waiter is None and len(self._buf) > self.max_line and not self._paused:
            self._paused = True
            self.transport.pauseProducing()
        self._process()

    def _process(self) -> None:
        if self._processing:
            return
        self._processing = True
        try:
            while not self.closed and (not self._busy or self._line_waiter is not None or self._lit_need):
                if self._inflater is not None:
                    self._inflate_more()
                if self._lit_need:
                    if not self._feed_literal():
                        return
                    continue
                idx = self._buf.find(b"\n")
                if idx < 0:
                    if len(self._buf) > self.max_line:
                        self._buf.clear()
                        self._skip_line = True
                        self._abandon(b"Line too long")
                    return
                line = bytes(self._buf[:idx])
                del self._buf[: idx + 1]
                if line.endswith(b"\r"):
                    line = line[:-1]
                if self._skip_line:
                    self._skip_line = False
                    continue
                if self._line_waiter is not None:
                    d, self._line_waiter = self._line_waiter, None
                    self.setTimeout(None)
                    d.callback(line)
                    continue
                self._on_line(line)
        finally:
            self._processing = False

    def _abandon(self, reason: bytes, tag: bytes | None = None) -> None:
        """Drop the command being assembled and say why."""
        if tag is None and self._cmd is not None and self._cmd.segments:
            tag = self._cmd.segments[0].split(b" ", 1)[0] or None
        self._cmd = None
        self._cmd_len = 0
        self.respond(b"BAD", tag if tag and _valid_tag(tag) else None, reason)

    def _on_line(self, line: bytes) -> None:
        if self._cmd is None:
            if not line.strip():
                return
            self._cmd = Command()
            self._cmd_len = 0
        cmd = self._cmd
        cmd.segments.append(line)
        self._cmd_len += len(line)
        if self._cmd_len > self.max_line:
            self._abandon(b"Command line too long")
            return
        marker = literal_marker(line)
        if marker is None:
            self._cmd = None
            self._execute(cmd)
            return
        size, nonsync = marker
        words = cmd.segments[0].split(b" ", 3)
        tag = words[0]
        is_append = len(words) > 1 and words[1].upper() == b"APPEND"
        limit = self.max_literal if is_append else self.max_line - self._cmd_len
        if size > limit:
            self._cmd = None
            if is_append:
                self.respond(b"NO", tag if _valid_tag(tag) else None, b"[TOOBIG] Message larger than the server accepts")
            else:
                self.respond(b"BAD", tag if _valid_tag(tag) else None, b"Literal too large")
            if nonsync:  # the client sends it anyway: read and discard, then the rest of the line
                self._lit_need, self._lit_discard, self._lit_sink = size, True, None
            return
        # MULTIAPPEND / CATENATE send many literals in one command: what they hold in memory together is bounded.
        held = sum(len(lit) for lit in cmd.literals if not isinstance(lit, FileLiteral)) if is_append else 0
        if is_append and size + held > SPOOL_IN_MEMORY:
            self._lit_sink = tempfile.TemporaryFile(prefix="imap-append-")
        else:
            self._lit_sink = io.BytesIO()
        self._lit_need, self._lit_discard = size, False
        self._lit_size = size
        if not is_append:
            self._cmd_len += size
        if not nonsync:
            self.write_lines([b"+ Ready for literal data"])
        if size == 0:
            self._finish_literal()

    def _feed_literal(self) -> bool:
        if not self._buf:
            return False
        chunk = self._buf[: self._lit_need]
        del self._buf[: len(chunk)]
        self._lit_need -= len(chunk)
        if not self._lit_discard:
            self._lit_sink.write(chunk)
        if self._lit_need == 0:
            if self._lit_discard:
                self._lit_discard = False
                self._skip_line = True
            else:
                self._finish_literal()
        return True

    def _finish_literal(self) -> None:
        sink, self._lit_sink = self._lit_sink, None
        if isinstance(sink, io.BytesIO):
            value = sink.getvalue()
        else:
            sink.flush()
            sink.seek(0)
            value = FileLiteral(sink, self._lit_size)
        self._cmd.literals.append(value)

    def _drop_literal(self) -> None:
        if self._lit_sink is not None and not isinstance(self._lit_sink, io.BytesIO):
            self._lit_sink.close()
        self._lit_sink = None
        if self._cmd is not None:
            for lit in self._cmd.literals:
                if isinstance(lit, FileLiteral):
                    lit.file.close()

    def next_line(self) -> defer.Deferred:
        """The next line the client sends, for AUTHENTICATE exchanges and IDLE."""
        self.setTimeout(self.autologout)  # waiting for the client: its silence counts
        self._line_waiter = defer.Deferred()
        self._process_soon()
        return self._line_waiter

    def _process_soon(self) -> None:
        self.sc.reactor.callLater(0, self._process)

    # -- dispatch ------------------------------------------------------------------------------
    def _execute(self, cmd: Command) -> None:
        tag = cmd.segments[0].split(b" ", 1)[0]
        try:
            tokens = tokenize(cmd)
        except ParseError as e:
            self.respond(b"BAD", tag if _valid_tag(tag) else None, str(e).encode())
            return
        if not tokens or not isinstance(tokens[0], Atom) or not _valid_tag(tokens[0]):
            self.respond(b"BAD", None, b"Missing or invalid tag")
            return
        if len(tokens) < 2 or not isinstance(tokens[1], Atom) or cmd.segments[0][len(tag) :].startswith(b"  "):
            self.respond(b"BAD", tokens[0], b"Missing command")
            return
        self._busy = True
        self.setTimeout(None)
        d = defer.ensureDeferred(self.dispatch(bytes(tokens[0]), bytes(tokens[1]).upper(), tokens[2:]))
        d.addErrback(self._command_failed, bytes(tokens[0]))
        d.addBoth(self._command_done, cmd)

    def _command_done(self, _result, cmd: Command) -> None:
        for lit in cmd.literals:
            if isinstance(lit, FileLiteral):
                lit.file.close()
        self._busy = False
        if not self.closed:
            self.setTimeout(self.autologout)
        if self._paused and not self.closed:
            self._paused = False
            self.transport.resumeProducing()
        if self.s.notify is not None and not self.closed:
            self.s.notify.command_done()
        self._process_soon()

    @property
    def in_command(self) -> bool:
        return self._busy

    def hold(self) -> None:
        self._busy = True

    def release(self) -> None:
        self._busy = False
        self._process_soon()

    async def dispatch(self, tag: bytes, name: bytes, args: list, uid: bool = False) -> None:
        """Look the command up in the table, parse its arguments, run it, answer."""
        s = self.s
        spec = COMMANDS.get(name)
        if spec is None or s.state not in spec.states:
            self.respond(b"BAD", tag, b"Command not valid in this state" if spec is not None else b"Unknown command")
            return
        values, rest = [], args
        for parse in spec.parsers:
            value, rest = parse(s, rest)
            values.append(value)
        if rest:
            raise ParseError("Too many arguments")
        kwargs = {"uid": True} if uid else {}
        # Announce new messages before any response can name their sequence numbers.
        if s.selected is not None and s.selected.claiming is not None:
            await recent_settled(s)
        s.flush_updates(allow_expunge=False)
        started = time.perf_counter() if name in TIMED else 0.0
        result = spec.handler(s, tag, *values, **kwargs)
        if hasattr(result, "__await__"):
            result = await result
        if started:  # /metrics: FETCH and SEARCH latency (UID or not)
            metrics.IMAP_COMMAND_SECONDS.labels(name.decode()).observe(time.perf_counter() - started)
        if result is not None:
            status, text = result
            if s.selected is not None and s.selected.contexts and name not in READ_ONLY:
                try:  # RFC 5267 §4.3: results kept current as the mailbox changes
                    await refresh_contexts(s)
                except StoreError as e:  # the command itself succeeded: its updates wait for the next one
                    log.warning("imap search context update failed: %s", e)
            s.flush_updates(allow_expunge=uid or name not in NO_EXPUNGE_REPORT)
            self.respond(status, tag, text)

    def _command_failed(self, f: failure.Failure, tag: bytes) -> None:
        if self.closed:
            return
        if f.check(ParseError):
            self.respond(b"BAD", tag, str(f.value).encode("utf-8", "replace"))
        elif f.check(Refused):
            self.respond(b"NO", tag, f.value.text)
        elif f.check(BadCharset):
            self.respond(b"NO", tag, b"[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset")
        elif f.check(StoreError):
            log.info("imap %s: %s", type(f.value).__name__, f.value)
            status, text = response_for(f.value)
            self.respond(status, tag, text)
        else:
            log.error("imap command failed", exc_info=(f.type, f.value, f.getTracebackObject()))
            self.respond(SERVER_BUG[0], tag, SERVER_BUG[1])

    def respond(self, state, tag, message) -> None:
        if self.closed:
            return
        line = (tag or b"*") + b" " + state + (b" " + message if message else b"")
        self.transport.write(line + b"\r\n")


def _valid_tag(tag: bytes) -> bool:
    return bool(tag) and all(0x21 <= c <= 0x7E and c not in b'(){%*"\\+' for c in tag)
