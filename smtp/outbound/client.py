"""SMTP delivery with aiosmtplib: sessions to the best reachable next hop, one transaction per message.

Hops are tried in order while the failure is about the connection (refused, timed out, greeting
not 220, EHLO refused, STARTTLS required but missing, 421). Once a server has answered MAIL FROM
its replies decide the attempt: trying another host after that could deliver twice.

Every reply is classified by its first digit; anything that is not 2xx/4xx/5xx (garbage, a
malformed line, a dropped connection, a timeout) is a temporary failure, so a broken remote can
delay mail but never crash the worker or bounce it. Timeouts follow RFC 5321 4.5.3.2 (config
``queue.*_timeout``).

A hop that offers CHUNKING gets the message with ``BDAT <size> LAST`` (RFC 3030): the stored bytes
as they are, no dot-stuffing pass over them. aiosmtplib has no BDAT; ``_bdat`` writes it on the
client's protocol under the client's command lock (docs/libraries.md, aiosmtplib).
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping, Sequence

import aiosmtplib

from smtp.dsn_params import encode_orcpt, xtext_encode
from smtp.outbound import dane, tlsrpt
from smtp.outbound.dane import Tlsa
from smtp.outbound.route import Hop
from storage.api import EnvelopeOptions
from storage.mime.downgrade import NotDowngradable, downgrade, needs_utf8

log = logging.getLogger("smtp.outbound.client")

GARBAGE = -1  # aiosmtplib's code for an unparseable reply


@dataclass(frozen=True, slots=True)
class Reply:
    code: int  # 250, 451, 550 … or 0 when there was no reply (connection problem)
    text: str
    remote: str  # the hop that answered (or failed)

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600


@dataclass(frozen=True, slots=True)
class TlsPolicy:
    require: bool
    context: ssl.SSLContext  # verifying or not, built once by the service
    requiretls: bool = False  # RFC 8689: verified TLS and a hop that offers REQUIRETLS, or no session
    # RFC 7672: MX host → its DNSSEC-validated TLSA records; such a host needs STARTTLS and a match
    dane: Mapping[str, Sequence[Tlsa]] | None = None


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 300
    command: float = 300
    data: float = 600


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message ready to send. ``data`` goes to a hop with SMTPUTF8, or anywhere when the header
    is ASCII; a hop without SMTPUTF8 gets ``ascii_form()`` instead (RFC 2047 words,
    IDNA domains, DKIM-signed again over those bytes), which raises ``NotDowngradable``."""

    data: bytes
    utf8_header: bool = False
    ascii_form: Callable[[], Awaitable[bytes]] | None = None
    tls_optional: bool = False  # the header "TLS-Required: No" (RFC 8689 5): no TLS policy applies

    @classmethod
    def of(cls, message: "bytes | Outgoing") -> "Outgoing":
        return message if isinstance(message, Outgoing) else cls(message, needs_utf8(message))


class _NextHop(Exception):
    """A connection-level failure (args[0] is the Reply; args[1], when given, the RFC 8460 TLS
    result type): try the next host."""

    @property
    def tls_result(self) -> str | None:
        return self.args[1] if len(self.args) > 1 else None


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]+")


def clean(text: str) -> str:
    """A remote's words made safe to store and to quote in a DSN (no NUL, controls, surrogates)."""
    return _CONTROL.sub(" ", text).strip()[:1000]


def _reply(code: int | None, text: str, remote: str) -> Reply:
    """Only 2xx/4xx/5xx are replies; anything else is kept as text of a temporary failure."""
    if code is None or not (200 <= code < 600):
        return Reply(0, clean(f"invalid reply {code}: {text}" if code not in (None, GARBAGE) else f"invalid reply: {text}"), remote)
    return Reply(code, clean(text), remote)


def _temporary(text: str, remote: str) -> Reply:
    return Reply(0, clean(text), remote)


def _needs_utf8(sender: str, recipients: Sequence[str]) -> bool:
    return not all(a.isascii() for a in (sender, *recipients))


class Session:
    """SMTP connections to one destination, reused for consecutive transactions (one TLS
    handshake for many messages). Not shared between tasks.

    The first transaction connects, trying ``hops`` in order. When no hop can be reached the
    session is ``dead``: later transactions get the same temporary failure at once instead of
    waiting for the same timeouts again (the next pass of the queue tries afresh)."""

    def __init__(self, hops: Sequence[Hop], *, helo: str, tls: TlsPolicy, timeouts: Timeouts,
                 on_tls: Callable[[Hop, str], None] | None = None) -> None:  # fmt: skip
        """``on_tls(hop, result)``: told of each TLS outcome ("success" or an RFC 8460 failure type)."""
        self.on_tls = on_tls
        self.hops = list(hops)
        self.helo = helo
        self.tls = tls
        self.timeouts = timeouts
        self.dead: Reply | None = None
        self._client: aiosmtplib.SMTP | None = None
        self._remote = ""
        self._clean = False  # the last transaction ended so that MAIL may follow directly

    @property
    def offers_dsn(self) -> bool:
        """The connected hop announced DSN (RFC 3461): it reports success itself."""
        return self._client is not None and self._client.supports_extension("dsn")

    async def transaction(self, sender: str, recipients: Sequence[str], message: "bytes | Outgoing",
                          options: EnvelopeOptions | None = None) -> dict[str, Reply]:  # fmt: skip
        """A reply for every recipient; never raises on the remote's behaviour. ``options``:
        the DSN parameters carried to a hop that offers DSN."""
        if self.dead is not None:
            return {r: self.dead for r in recipients}
        if self._client is not None and not (self._client.is_connected and await self._reset()):
            self._drop()
        if self._client is None:
            try:
                await self._connect()
            except _NextHop as exc:
                self.dead = exc.args[0]
                return {r: self.dead for r in recipients}
        try:
            results, self._clean = await _envelope(self._client, self._remote, sender, recipients, message, self.timeouts,
                                                   options)  # fmt: skip
        except _NextHop as exc:  # 421 at MAIL: the server is closing
            self._drop()
            self.dead = exc.args[0]
            return {r: self.dead for r in recipients}
        return results

    async def _reset(self) -> bool:
        if self._clean:
            return True
        try:
            return (await self._client.rset(timeout=self.timeouts.command)).code == 250
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
            return False

    async def _connect(self) -> None:
        last = _temporary("no mail server to try", "")
        for hop in self.hops:
            try:
                self._client = await _open(hop, helo=self.helo, tls=self.tls, timeouts=self.timeouts)
                self._remote = str(hop)
                self._clean = True
                if self.on_tls is not None and self._client.transport is not None \
                        and self._client.transport.get_extra_info("ssl_object") is not None:  # fmt: skip
                    self.on_tls(hop, "success")
                return
            except _NextHop as exc:
                last = exc.args[0]
                if self.on_tls is not None and exc.tls_result:
                    self.on_tls(hop, exc.tls_result)
                log.info("%s: %s %s", hop, last.code or "", last.text)
        raise _NextHop(last)

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    async def close(self) -> None:
        if self._client is not None and self._client.is_connected:
            try:
                await self._client.quit(timeout=self.timeouts.command)
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                pass
        self._drop()


async def _open(hop: Hop, *, helo: str, tls: TlsPolicy, timeouts: Timeouts) -> aiosmtplib.SMTP:
    """Connect, EHLO (HELO fallback), STARTTLS when offered; ``_NextHop`` on any failure."""
    remote = str(hop)
    client = aiosmtplib.SMTP(
        hostname=hop.address, port=hop.port, local_hostname=helo, timeout=timeouts.command,
        start_tls=False, tls_context=tls.context,
    )  # fmt: skip
    records = (tls.dane or {}).get(hop.host)
    try:
        await client.connect(timeout=timeouts.connect)
        await _hello(client, timeouts)
        if records:  # DANE (RFC 7672 2.2): STARTTLS or nothing, the certificate checked against TLSA
            if not client.supports_extension("starttls"):
                raise _NextHop(_temporary("4.7.5 DANE: TLSA records published but STARTTLS not offered", remote),
                               "starttls-not-supported")  # fmt: skip
            await client.starttls(server_hostname=hop.host, tls_context=_unverified(), timeout=timeouts.command)
            ssl_object = client.transport.get_extra_info("ssl_object") if client.transport else None
            problem = dane.check(dane.peer_chain(ssl_object), records, hop.host) if ssl_object else "no TLS session"
            if problem:
                raise _NextHop(_temporary(f"4.7.5 DANE: {problem}", remote), "validation-failure")
            await _hello(client, timeouts)
        elif client.supports_extension("starttls"):
            await client.starttls(server_hostname=hop.host, timeout=timeouts.command)
            await _hello(client, timeouts)
        elif tls.requiretls:
            raise _NextHop(_temporary("5.7.10 REQUIRETLS: the receiving server does not offer STARTTLS", remote),
                           "starttls-not-supported")  # fmt: skip
        elif tls.require:
            raise _NextHop(_temporary("STARTTLS required for this domain but not offered", remote), "starttls-not-supported")
        if tls.requiretls and not client.supports_extension("requiretls"):
            raise _NextHop(_temporary("5.7.10 REQUIRETLS: the receiving server does not offer REQUIRETLS", remote))
        return client
    except _NextHop:
        client.close()
        raise
    except aiosmtplib.SMTPResponseException as exc:
        client.close()
        raise _NextHop(_reply(exc.code, exc.message, remote)) from None
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError, asyncio.TimeoutError, ValueError) as exc:
        client.close()
        raise _NextHop(_temporary(f"{type(exc).__name__}: {exc}", remote), tlsrpt.classify(exc)) from None


_UNVERIFIED: ssl.SSLContext | None = None


def _unverified() -> ssl.SSLContext:
    """The handshake context of a DANE host: the TLSA records, not the CA list, decide."""
    global _UNVERIFIED
    if _UNVERIFIED is None:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        _UNVERIFIED = ctx
    return _UNVERIFIED


async def _hello(client: aiosmtplib.SMTP, timeouts: Timeouts) -> None:
    try:
        await client.ehlo(timeout=timeouts.command)
    except aiosmtplib.SMTPHeloError as exc:
        if exc.code == 421 or not client.is_connected:
            raise
        await client.helo(timeout=timeouts.command)


async def _for_hop(client: aiosmtplib.SMTP, remote: str, addresses_utf8: bool, out: Outgoing) -> bytes | Reply:
    """The bytes this hop can take (RFC 6531/6532), or the 5.6.7 refusal when there are none."""
    if client.supports_extension("smtputf8") or not (addresses_utf8 or out.utf8_header):
        return out.data
    if addresses_utf8:
        return Reply(550, "5.6.7 the receiving server does not support internationalised addresses (SMTPUTF8)", remote)
    try:
        return await out.ascii_form() if out.ascii_form else downgrade(out.data)
    except NotDowngradable as exc:
        return Reply(550, f"5.6.7 the receiving server does not support SMTPUTF8 and {exc}", remote)


async def _envelope(
    client: aiosmtplib.SMTP, remote: str, sender: str, recipients: Sequence[str], message: "bytes | Outgoing",
    timeouts: Timeouts, dsn: EnvelopeOptions | None = None,
) -> tuple[dict[str, Reply], bool]:
    """One transaction; returns the replies and whether MAIL may follow without RSET."""
    results: dict[str, Reply] = {}
    options = []
    out = Outgoing.of(message)
    utf8 = _needs_utf8(sender, recipients)
    message = await _for_hop(client, remote, utf8, out)
    if isinstance(message, Reply):
        return {r: message for r in recipients}, True
    if (utf8 or out.utf8_header) and client.supports_extension("smtputf8"):
        options.append("SMTPUTF8")
    if client.supports_extension("size"):
        options.append(f"SIZE={len(message)}")
    if client.supports_extension("8bitmime") and any(b > 127 for b in message):
        options.append("BODY=8BITMIME")
    if dsn is not None and dsn.requiretls:
        options.append("REQUIRETLS")  # the session was opened with TlsPolicy.requiretls (RFC 8689 4.2)
    rcpt_options: dict[str, list[str]] = {}
    if dsn is not None and client.supports_extension("dsn"):  # RFC 3461 5.2: carried as given
        options += [f"RET={dsn.ret}"] * bool(dsn.ret) + [f"ENVID={xtext_encode(dsn.envid)}"] * bool(dsn.envid)
        for rcpt in recipients:
            asked = dsn.for_recipient(rcpt)
            rcpt_options[rcpt] = [f"NOTIFY={asked.notify}"] * bool(asked.notify) + [
                f"ORCPT={encode_orcpt(asked.orcpt)}"] * bool(asked.orcpt)  # fmt: skip
    encoding = "utf-8" if utf8 else "ascii"
    try:
        try:
            await client.mail(sender, options=options, encoding=encoding, timeout=timeouts.command)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:
                raise _NextHop(_reply(exc.code, exc.message, remote)) from None
            fail = _reply(exc.code, exc.message, remote)
            return {r: fail for r in recipients}, False
        accepted = []
        for rcpt in recipients:
            try:
                response = await client.rcpt(rcpt, options=rcpt_options.get(rcpt), encoding=encoding, timeout=timeouts.command)
                accepted.append(rcpt)
                results[rcpt] = _reply(response.code, response.message, remote)
            except aiosmtplib.SMTPRecipientRefused as exc:
                results[rcpt] = _reply(exc.code, exc.message, remote)
                if exc.code == 421:
                    break
        if not accepted:
            for rcpt in recipients:
                results.setdefault(rcpt, _temporary("connection closed before RCPT", remote))
            return results, False
        try:
            if client.supports_extension("chunking"):
                response = await _bdat(client, message, timeouts.data)
            else:
                response = await client.data(message, timeout=timeouts.data)
            done = _reply(response.code, response.message, remote)
        except aiosmtplib.SMTPResponseException as exc:
            done = _reply(exc.code, exc.message, remote)
        for rcpt in accepted:
            results[rcpt] = done
        return results, done.ok
    except _NextHop:
        raise
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError, asyncio.TimeoutError, ValueError, UnicodeError) as exc:
        client.close()  # state unknown after a timeout or a broken reply: never reuse
        fail = _temporary(f"{type(exc).__name__}: {exc}", remote)
        return {r: results[r] if r in results and not results[r].ok else fail for r in recipients}, False


async def _bdat(client: aiosmtplib.SMTP, message: bytes, timeout: float) -> aiosmtplib.SMTPResponse:
    """The message as one last chunk (RFC 3030 2): ``BDAT n LAST`` and the n octets, one reply."""
    protocol = client.protocol
    lock = getattr(protocol, "_command_lock", None)
    if protocol is None or lock is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    async with lock:
        protocol._response_pending = True  # as aiosmtplib's own execute_command marks it
        protocol.write(b"BDAT %d LAST\r\n" % len(message) + message)
        response = await protocol.read_response(timeout=timeout)
    if response.code != 250:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return response
