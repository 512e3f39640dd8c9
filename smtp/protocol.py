"""Our aiosmtpd ``SMTP`` subclass: syntax of MAIL/RCPT/DATA, streaming DATA, enhanced status codes.

What is overridden, and why (docs/libraries.md, aiosmtpd):
- ``push``: every reply gets an RFC 3463 enhanced code (aiosmtpd's own replies mostly lack one),
  except those RFC 2034 exempts (greeting, HELO/EHLO, 3xx).
- ``smtp_EHLO``: advertise PIPELINING and ENHANCEDSTATUSCODES; no empty ``AUTH`` line.
- ``smtp_MAIL``/``smtp_RCPT``: strict path syntax (smtp/address.py), our reply codes, parameters
  checked here so ``AUTH=``/DSN parameters can be added in one place.
- ``smtp_DATA``: streamed to a spool file (smtp/data.py) instead of buffered 3.9x in memory,
  idle timeout reset per block, long lines accepted up to a sane cap.
- ``smtp_BDAT`` (RFC 3030 CHUNKING, BINARYMIME; aiosmtpd has none): chunks of an exact size
  read into one spool (smtp/data.py ``Chunks``), the LAST one handing it to the same handler as
  DATA (size, quota, filters, durable commit before the 250).
- ``_timeout_cb``: say ``421 4.4.2`` before closing an idle connection (RFC 5321 4.5.3.2); during
  DATA the clock runs from the last bytes received, not from the DATA command (aiosmtpd cuts a
  slow but steady sender).
"""

from __future__ import annotations

import asyncio
import ssl
import collections
import functools
import logging
import socket
from typing import Any, AnyStr, BinaryIO, Callable

from aiosmtpd.smtp import SMTP, syntax

from mailserver.policy.guard import is_trusted
from mailserver.policy.loginlog import log_limit
from mailserver.policy.proxyheader import BadHeader, parse as parse_proxy_header
from smtp import replies
from smtp.address import AddressSyntaxError, parse_path
from smtp.data import Chunks, read_data, skip_chunk
from smtp.dsn_params import parse_envid, parse_notify, parse_orcpt, parse_ret
from smtp.handler import InboundHandler
from smtp.pipeline import Login, Peer
from smtp.transaction import Transaction
from storage.api import RecipientDsn

log = logging.getLogger("smtp.protocol")

RDNS_TIMEOUT = 2.0  # seconds; a slow resolver must not hold up delivery
#: replies that count as a bad command (unknown, syntax, out of sequence, parameter errors)
BAD_COMMAND_CODES = frozenset({"500", "501", "502", "503", "504", "555"})


class MailSMTP(SMTP):
    # aiosmtpd sizes its StreamReader with this. Command lines are still capped by
    # command_size_limits below (→ 500 5.5.2); DATA is read in blocks of about this size.
    line_length_limit = 64 * 1024

    def __init__(
        self,
        handler: InboundHandler,
        *,
        spool_factory: Callable[[], BinaryIO],
        max_message_size: int,
        resolve_name: Callable[[str], Any] | None = None,
        implicit_tls: bool = False,
        plaintext_auth_on_loopback: bool = False,
        service: str = "smtp",
        limits: Any = None,
        proxy_from: tuple = (),
        proxy_timeout: float = 10.0,
        max_commands: int | None = None,
        max_bad_commands: int | None = None,
        late_tls: ssl.SSLContext | None = None,
        **kwargs: Any,
    ) -> None:
        """``limits``: connections per client address (mailserver.accounts.guard.ConnectionLimits);
        ``proxy_from``: networks whose connections begin with a PROXY header (the real client);
        ``max_commands``, ``max_bad_commands``: per session, then ``421 4.7.0`` and close;
        ``late_tls``: 465 on a plain listener (behind a PROXY-speaking load balancer): TLS with this
        context begins after the PROXY header, or at once for a direct client (smtp/late_tls.py)."""
        kwargs.setdefault("enable_SMTPUTF8", True)
        if not hasattr(handler, "auth_PLAIN"):  # MX: no AUTH at all, not even aiosmtpd's built-ins
            kwargs.setdefault("auth_exclude_mechanism", ["LOGIN", "PLAIN"])
        super().__init__(handler, data_size_limit=max_message_size, **kwargs)
        # Per instance: aiosmtpd's dict is class-level and grows at every EHLO. 512 is RFC 5321's
        # minimum; MAIL/RCPT carry extension parameters (SIZE, BODY, SMTPUTF8, later DSN's ORCPT)
        # and UTF-8 addresses, so they get room for them (RFC 1870 section 3, RFC 6531 3.4).
        self.command_size_limits = collections.defaultdict(lambda: 512, {"MAIL": 1024, "RCPT": 1024})
        self._implicit_tls = implicit_tls
        self._plaintext_auth_on_loopback = plaintext_auth_on_loopback
        self._spool_factory = spool_factory
        self._greeted = False
        self._resolve_name = resolve_name or reverse_dns
        self._peer_name: asyncio.Task | None = None
        self._in_data = False
        self._last_rx = 0.0
        self._deadline = 0.0  # loop time at which the idle timeout fires
        self._timer_armed = False
        self._peer_memo: tuple[tuple, Peer] | None = None
        self._service = service
        self._limits = limits
        self._proxy_from = proxy_from
        self._proxy_wait = proxy_timeout
        self._begun = False  # the session started (after the PROXY header, if one is expected)
        self._awaiting_header: asyncio.BaseTransport | None = None
        self._header = b""
        self._header_timer: asyncio.TimerHandle | None = None
        self._counted: str | None = None  # the client address counted in ``limits``
        self._client: tuple[str, int] | None = None  # the client a PROXY header named
        self._max_bad = max_bad_commands
        self._bad = 0
        self._late_tls = late_tls
        self._tls_pending = False  # late_tls started: the next connection_made is the TLS transport
        if max_commands is not None:
            self._commands_left = max_commands
            self._smtp_methods = {name: self._counting(method) for name, method in self._smtp_methods.items()}

    def _create_envelope(self) -> Transaction:
        return Transaction()

    # -- connection --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._tls_pending:  # 465 behind a proxy: the TLS handshake is done, the session starts
            self._tls_pending = False
            self._begin(transport, self._client)
            return
        if self._begun:  # STARTTLS: a new session over the TLS transport, the same client
            super().connection_made(transport)
            if self._client is not None and self.session is not None:
                self.session.peer = self._client
            return
        peer = transport.get_extra_info("peername")
        if self._proxy_from and peer and is_trusted(str(peer[0]), self._proxy_from):
            self._awaiting_header = transport
            self._header_timer = self.loop.call_later(self._proxy_wait, self._header_late)
            return
        if self._late_tls is not None:
            self._begin_tls(transport, None, b"")
            return
        self._begin(transport, None)

    def _begin_tls(self, transport: asyncio.BaseTransport, client: tuple[str, int] | None, rest: bytes) -> None:
        from smtp import late_tls

        self._tls_pending, self._client = True, client
        late_tls.start_tls(self.loop, transport, self, self._late_tls, rest, self._proxy_wait)

    def _begin(self, transport: asyncio.BaseTransport, client: tuple[str, int] | None) -> None:
        """Start the session (aiosmtpd's greeting and command loop) with ``client`` as its peer
        when a PROXY header named one; refused over the connection limit."""
        peer = client or transport.get_extra_info("peername")
        host = str(peer[0]) if peer else ""
        if self._limits is not None:
            if not self._limits.acquire(self._service, host):
                transport.write(replies.S421_CONNECTIONS.encode() + b"\r\n")
                transport.close()
                return
            self._counted = host
        self._begun = True
        self._client = client
        super().connection_made(transport)
        if client is not None and self.session is not None:
            self.session.peer = client
        if self._peer_name is None and self.session and self.session.peer:
            ip = str(self.session.peer[0])
            self._peer_name = self.loop.create_task(self._resolve_name(ip))
            if self._implicit_tls or (self._plaintext_auth_on_loopback and _is_loopback(ip)):
                self._auth_require_tls = False  # 465 is TLS already (docs/libraries.md, aiosmtpd)

    def connection_lost(self, error: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        if self._counted is not None:
            self._limits.release(self._service, self._counted)
            self._counted = None
        if not self._begun:
            return  # refused, or no PROXY header: no session was started
        if self._peer_name is not None:
            self._peer_name.cancel()
        if isinstance(self.envelope, Transaction) and self.envelope.chunks is not None:
            self.envelope.chunks.close()  # a client gone between BDAT chunks
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        if not self._begun:
            return False
        return super().eof_received()

    def data_received(self, data: bytes) -> None:
        if self._awaiting_header is not None:
            self._proxy_header(data)
            return
        if not self._begun:
            return
        self._last_rx = self.loop.time()
        super().data_received(data)

    def _proxy_header(self, data: bytes) -> None:
        transport = self._awaiting_header
        assert transport is not None
        self._header += data
        try:
            header = parse_proxy_header(self._header)
        except BadHeader as e:
            log.warning("proxy: %s from %s; closing", e, transport.get_extra_info("peername"))
            self._awaiting_header = None
            transport.close()
            return
        if header is None:
            return
        self._awaiting_header, self._header = None, b""
        if self._header_timer is not None:
            self._header_timer.cancel()
        if self._late_tls is not None:
            self._begin_tls(transport, header.client, header.rest)
            return
        self._begin(transport, header.client)
        if header.rest and self._begun:
            self.data_received(header.rest)

    def _header_late(self) -> None:
        if self._awaiting_header is not None:
            log.warning("proxy: no PROXY header from %s in time; closing", self._awaiting_header.get_extra_info("peername"))
            self._awaiting_header.close()
            self._awaiting_header = None

    def _counting(self, method: Callable[[str | None], Any]) -> Callable[[str | None], Any]:
        @functools.wraps(method)  # HELP reads the syntax attributes of the methods
        async def counted(arg: str | None) -> None:
            self._commands_left -= 1
            if self._commands_left < 0:
                await self._refuse(replies.S421_TOO_MANY_COMMANDS, "commands")
                return
            await method(arg)

        return counted

    async def _refuse(self, reply: str, what: str) -> None:
        """Over a per-session limit: say so (421, RFC 5321 3.8), log it and close."""
        assert self.session is not None
        log_limit(self._service, str(self.session.peer[0]) if self.session.peer else "", what)
        await self._push_raw(reply)
        if self.transport is not None:
            self.transport.close()

    def _reset_timeout(self, duration: float | None = None) -> None:
        """Move the idle deadline. aiosmtpd cancels its timer and schedules a new one at every
        command (a heap entry and a cancelled handle each time, ~4 % of the loop's time under
        load); here one timer runs and, when it fires before the deadline, re-arms for the rest."""
        self._deadline = self.loop.time() + (duration or self._timeout_duration)
        if not self._timer_armed:
            self._timer_armed = True
            self._timeout_handle = self.loop.call_at(self._deadline, self._timeout_cb)

    def _timeout_cb(self) -> None:
        self._timer_armed = False
        now = self.loop.time()
        if now < self._deadline:  # a command moved the deadline since the timer was set
            self._reset_timeout(self._deadline - now)
            return
        idle = now - self._last_rx
        if self._in_data and idle < self._timeout_duration:
            self._reset_timeout(self._timeout_duration - idle)
            return
        if self.transport is not None and not self.transport.is_closing():
            self._writer.write(replies.S421_TIMEOUT.format(host=self.hostname).encode() + b"\r\n")
        super()._timeout_cb()

    async def peer_name(self) -> str | None:
        if self._peer_name is None:
            return None
        if self._peer_name.done() and not self._peer_name.cancelled():
            # Known since the first message of the session: no timer and no shield per message.
            return None if self._peer_name.exception() is not None else self._peer_name.result()
        try:  # asyncio.timeout: 3.11's wait_for can swallow the session's cancellation
            async with asyncio.timeout(RDNS_TIMEOUT):
                return await asyncio.shield(self._peer_name)
        except (TimeoutError, OSError):
            return None

    def peer(self) -> Peer:
        """What the checks know of the client; built again only when HELO, TLS or AUTH changed
        (it is asked for at every MAIL, RCPT and DATA)."""
        session = self.session
        assert session is not None
        tls = self._implicit_tls or self._tls_protocol is not None
        key = (session.host_name, tls, session.authenticated, session.auth_data, session.peer)
        memo = self._peer_memo
        if memo is not None and memo[0] == key:
            return memo[1]
        login = session.auth_data if session.authenticated else None
        account = login.account if isinstance(login, Login) else login
        actor = login.actor if isinstance(login, Login) else login
        peer = Peer(
            ip=str(session.peer[0]) if session.peer else "unknown",
            helo=session.host_name or "",
            tls=tls,
            authenticated=bool(session.authenticated),
            account_id=getattr(account, "id", None),
            actor_id=getattr(actor, "id", None),
            actor_password_changed_at=getattr(actor, "password_changed_at", None),
            outbound=getattr(self.event_handler, "outbound", None) is not None,
        )
        self._peer_memo = (key, peer)
        return peer

    # -- replies -----------------------------------------------------------------------------
    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            if self._greeted:
                status = replies.enhance(status)
            self._greeted = True
        await super().push(status)
        if self._max_bad is not None and isinstance(status, str) and status[:3] in BAD_COMMAND_CODES:
            self._bad += 1
            if self._bad >= self._max_bad:
                await self._refuse(replies.S421_TOO_MANY_ERRORS, "bad-commands")

    async def _push_raw(self, status: str) -> None:
        await super().push(status)

    # -- commands ----------------------------------------------------------------------------
    async def smtp_HELO(self, hostname: str) -> None:
        if not hostname:
            await self.push("501 5.5.4 Syntax: HELO hostname")
            return
        self._set_rset_state()
        assert self.session is not None
        self.session.extended_smtp = False
        self.session.host_name = hostname
        await self._push_raw(f"250 {self.hostname}")

    async def smtp_EHLO(self, hostname: str) -> None:
        if not hostname:
            await self.push("501 5.5.4 Syntax: EHLO hostname")
            return
        self._set_rset_state()
        assert self.session is not None
        self.session.extended_smtp = True
        self.session.host_name = hostname
        lines = [self.hostname, "PIPELINING", f"SIZE {self.data_size_limit}", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
                 "DSN", "CHUNKING", "BINARYMIME"]  # fmt: skip
        if self.tls_context and not self._tls_protocol:
            lines.append("STARTTLS")
        if self._implicit_tls or self._tls_protocol:
            lines.append("REQUIRETLS")  # RFC 8689 4.1: offered over TLS only
        if self._auth_methods and (not self._auth_require_tls or self._tls_protocol):
            lines.append("AUTH " + " ".join(sorted(self._auth_methods)))
        lines.append("HELP")
        for line in lines[:-1]:
            await self._push_raw("250-" + line)
        await self._push_raw("250 " + lines[-1])

    async def smtp_MAIL(self, arg: str | None) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("MAIL"):
            return
        assert self.session is not None and isinstance(self.envelope, Transaction)
        tx = self.envelope
        if tx.mail_from is not None:
            await self.push(replies.S503_NESTED_MAIL)
            return
        try:
            path = parse_path(arg, "FROM:", allow_null=True, utf8=True)
        except AddressSyntaxError:
            await self.push(replies.S501_MAIL_SYNTAX)
            return
        error = self._mail_params(path.params, extended=self.session.extended_smtp)
        if error:
            await self.push(error)
            return
        tx.smtp_utf8 = bool(path.params.get("SMTPUTF8"))
        tx.binarymime = str(path.params.get("BODY", "")).upper() == "BINARYMIME"
        if "REQUIRETLS" in path.params:  # RFC 8689 4.1: only over TLS; kept with the queued mail
            if not (self._implicit_tls or self._tls_protocol):
                await self.push(replies.S530_REQUIRETLS)
                return
            tx.requiretls = True
        if not tx.smtp_utf8 and not path.address.isascii():
            await self.push(replies.S501_MAIL_SYNTAX)  # RFC 6531: UTF-8 address needs SMTPUTF8
            return
        size = path.params.get("SIZE")
        tx.declared_size = int(size) if isinstance(size, str) else None
        tx.dsn_ret = parse_ret(path.params["RET"]) if "RET" in path.params else None
        tx.dsn_envid = parse_envid(path.params["ENVID"]) if "ENVID" in path.params else None
        tx.mail_options = [f"{k}={v}" if v is not True else k for k, v in path.params.items()]
        await self.push(await self.event_handler.mail(self.peer(), tx, path))

    @staticmethod
    def _mail_params(params: dict[str, str | bool], *, extended: bool) -> str | None:
        if params and not extended:
            return replies.S555_MAIL_PARAMS
        for key, value in params.items():
            if key == "SIZE" and not (isinstance(value, str) and value.isdigit() and len(value) < 20):
                return replies.S501_SIZE
            if key == "BODY" and not (isinstance(value, str) and value.upper() in ("7BIT", "8BITMIME", "BINARYMIME")):
                return replies.S501_BODY
            if key in ("SMTPUTF8", "REQUIRETLS") and value is not True:
                return replies.S501_NO_VALUE.format(key=key)
            if key in _MAIL_DSN:
                try:
                    _MAIL_DSN[key](value)
                except ValueError as e:
                    return replies.S501_DSN_PARAM.format(reason=e)
            elif key not in ("SIZE", "BODY", "SMTPUTF8", "REQUIRETLS"):
                return replies.S555_MAIL_PARAMS
        return None

    async def smtp_RCPT(self, arg: str | None) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("RCPT"):
            return
        assert isinstance(self.envelope, Transaction)
        tx = self.envelope
        if tx.mail_from is None:
            await self.push(replies.S503_NEED_MAIL)
            return
        try:
            path = parse_path(
                arg, "TO:", allow_null=False, utf8=tx.smtp_utf8, postmaster_domain=self.event_handler.postmaster_domain
            )
        except AddressSyntaxError:
            await self.push(replies.S501_RCPT_SYNTAX)
            return
        try:
            dsn = _rcpt_dsn(path.params)
        except KeyError:
            await self.push(replies.S555_RCPT_PARAMS)
            return
        except ValueError as e:
            await self.push(replies.S501_DSN_PARAM.format(reason=e))
            return
        before = len(tx.accounts)
        reply = await self.event_handler.rcpt(self.peer(), tx, path)
        if reply.startswith("250"):
            if dsn is not None:
                tx.rcpt_dsn[path.address] = dsn
            for account in tx.accounts[before:]:
                tx.account_rcpt.setdefault(account.id, path.address)
        await self.push(reply)

    async def smtp_DATA(self, arg: str | None) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.session is not None and isinstance(self.envelope, Transaction)
        tx = self.envelope
        if arg:
            await self.push(replies.S501_DATA_SYNTAX)
            return
        if tx.mail_from is None:
            await self.push(replies.S503_NEED_MAIL)
            return
        if not tx.rcpt_tos:
            await self.push(replies.S503_NEED_RCPT)
            return
        if tx.chunks is not None or tx.binarymime:  # RFC 3030 2, 3: no DATA once BDAT began or with BINARYMIME
            await self.push(replies.S503_BDAT_ONLY)
            return
        await self.push(replies.S354_START)
        self._in_data = True
        try:
            result = await read_data(self._reader, self._spool_factory, max_size=self.data_size_limit)
        finally:
            self._in_data = False
        self._reset_timeout()  # the commit below may take a while; count from the end of data
        await self._finish_message(tx, result)

    async def _finish_message(self, tx: Transaction, result) -> None:
        """The end of DATA or BDAT LAST: the handler stores (or refuses) the message, the spool is
        closed, the transaction ends, and its reply goes out."""
        try:
            peer_name = await self.peer_name()
            reply = await self.event_handler.data(self.peer(), tx, result, peer_name, self.session.extended_smtp)
        finally:
            if result.spool is not None:
                result.spool.close()
            self._set_post_data_state()
        self._reset_timeout()
        await self.push(reply)

    @syntax("BDAT chunk-size [LAST]")
    async def smtp_BDAT(self, arg: str | None) -> None:
        """``BDAT size [LAST]`` (RFC 3030). The chunk's octets follow the command whatever the
        reply, so they are always read (or skipped) before replying; only a size we cannot read
        ends the session, since the stream is then out of step."""
        words = (arg or "").split()
        last = len(words) == 2 and words[1].upper() == "LAST"
        if not words or len(words) > 2 or (len(words) == 2 and not last) or not words[0].isdigit() or len(words[0]) > 18:
            await self.push(replies.S501_BDAT_SYNTAX)
            if self.transport is not None:
                self.transport.close()
            return
        size = int(words[0])
        assert self.session is not None and isinstance(self.envelope, Transaction)
        tx = self.envelope
        refusal = None
        if not self.session.host_name:
            refusal = replies.S503_NEED_HELO
        elif self._auth_required and not self.session.authenticated:
            refusal = "530 5.7.0 Authentication required"
        elif tx.mail_from is None:
            refusal = replies.S503_NEED_MAIL
        elif not tx.rcpt_tos:
            refusal = replies.S503_NEED_RCPT
        self._in_data = True
        try:
            if refusal is not None:
                await skip_chunk(self._reader, size)
            else:
                if tx.chunks is None:
                    tx.chunks = Chunks(self._spool_factory, max_size=self.data_size_limit, binary=tx.binarymime)
                await tx.chunks.read(self._reader, size)
        finally:
            self._in_data = False
        self._reset_timeout()
        if refusal is not None:
            await self.push(refusal)
            return
        if not last:
            await self.push(replies.S250_CHUNK.format(size=size, total=tx.chunks.received))
            return
        await self._finish_message(tx, tx.chunks.result())

    def _set_post_data_state(self) -> None:
        """A transaction ends (after DATA/BDAT LAST, RSET, HELO/EHLO): drop a BDAT spool left over."""
        if isinstance(self.envelope, Transaction) and self.envelope.chunks is not None:
            self.envelope.chunks.close()
        super()._set_post_data_state()


_MAIL_DSN = {"RET": parse_ret, "ENVID": parse_envid}  # RFC 3461 4.3, 4.4


def _rcpt_dsn(params: dict[str, str | bool]) -> RecipientDsn | None:
    """NOTIFY and ORCPT of a RCPT (RFC 3461 4.1, 4.2); KeyError for any other parameter."""
    for key in params:
        if key not in ("NOTIFY", "ORCPT"):
            raise KeyError(key)
    if not params:
        return None
    notify = parse_notify(params["NOTIFY"]) if "NOTIFY" in params else None
    orcpt = parse_orcpt(params["ORCPT"]) if "ORCPT" in params else None
    return RecipientDsn(notify, orcpt)


def _is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip in ("::1", "::ffff:127.0.0.1")


async def reverse_dns(ip: str) -> str | None:
    """The peer's name from reverse DNS (for the Received header); None when it has none."""
    loop = asyncio.get_running_loop()
    try:
        host, _ = await loop.getnameinfo((ip, 0), socket.NI_NAMEREQD)
    except (OSError, UnicodeError):
        return None
    return host
