"""One delivery attempt: an SMTP transaction with aiosmtplib to the best reachable next hop.

Hops are tried in order while the failure is about the connection (refused, timed out, greeting
not 220, EHLO refused, STARTTLS required but missing, 421). Once a server has answered MAIL FROM
its replies decide the attempt: trying another host after that could deliver twice.

Every reply is classified by its first digit; anything that is not 2xx/4xx/5xx (garbage, a
malformed line, a dropped connection, a timeout) is a temporary failure, so a broken remote can
delay mail but never crash the worker or bounce it. Timeouts follow RFC 5321 4.5.3.2 (config
``queue.*_timeout``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Sequence

import aiosmtplib

from smtp.outbound.route import Hop

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


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 300
    command: float = 300
    data: float = 600


class _NextHop(Exception):
    """A connection-level failure: try the next host."""


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


async def send(
    hops: Sequence[Hop],
    sender: str,
    recipients: Sequence[str],
    message: bytes,
    *,
    helo: str,
    tls: TlsPolicy,
    timeouts: Timeouts,
) -> dict[str, Reply]:
    """Try ``hops`` in order; returns a reply for every recipient (never raises on remote
    behaviour)."""
    last = _temporary("no mail server to try", "")
    for hop in hops:
        try:
            return await _transaction(hop, sender, recipients, message, helo=helo, tls=tls, timeouts=timeouts)
        except _NextHop as exc:
            last = exc.args[0]
            log.info("%s: %s %s", hop, last.code or "", last.text)
    return {r: last for r in recipients}


async def _transaction(
    hop: Hop, sender: str, recipients: Sequence[str], message: bytes, *, helo: str, tls: TlsPolicy, timeouts: Timeouts
) -> dict[str, Reply]:
    remote = str(hop)
    client = aiosmtplib.SMTP(
        hostname=hop.address, port=hop.port, local_hostname=helo, timeout=timeouts.command,
        start_tls=False, tls_context=tls.context,
    )  # fmt: skip
    try:
        try:
            await client.connect(timeout=timeouts.connect)
            await _hello(client, timeouts)
            if client.supports_extension("starttls"):
                await client.starttls(server_hostname=hop.host, timeout=timeouts.command)
                await _hello(client, timeouts)
            elif tls.require:
                raise _NextHop(_temporary("STARTTLS required for this domain but not offered", remote))
        except aiosmtplib.SMTPResponseException as exc:
            raise _NextHop(_reply(exc.code, exc.message, remote)) from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, asyncio.TimeoutError, ValueError) as exc:
            raise _NextHop(_temporary(f"{type(exc).__name__}: {exc}", remote)) from None
        return await _envelope(client, remote, sender, recipients, message, timeouts)
    finally:
        client.close()


async def _hello(client: aiosmtplib.SMTP, timeouts: Timeouts) -> None:
    try:
        await client.ehlo(timeout=timeouts.command)
    except aiosmtplib.SMTPHeloError as exc:
        if exc.code == 421 or not client.is_connected:
            raise
        await client.helo(timeout=timeouts.command)


async def _envelope(
    client: aiosmtplib.SMTP, remote: str, sender: str, recipients: Sequence[str], message: bytes, timeouts: Timeouts
) -> dict[str, Reply]:
    results: dict[str, Reply] = {}
    options = []
    utf8 = _needs_utf8(sender, recipients)
    if utf8:
        if not client.supports_extension("smtputf8"):
            fail = Reply(550, "5.6.7 the receiving server does not support internationalised addresses (SMTPUTF8)", remote)
            return {r: fail for r in recipients}
        options.append("SMTPUTF8")
    if client.supports_extension("size"):
        options.append(f"SIZE={len(message)}")
    if client.supports_extension("8bitmime") and any(b > 127 for b in message):
        options.append("BODY=8BITMIME")
    encoding = "utf-8" if utf8 else "ascii"
    try:
        try:
            await client.mail(sender, options=options, encoding=encoding, timeout=timeouts.command)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:
                raise _NextHop(_reply(exc.code, exc.message, remote)) from None
            fail = _reply(exc.code, exc.message, remote)
            return {r: fail for r in recipients}
        accepted = []
        for rcpt in recipients:
            try:
                response = await client.rcpt(rcpt, encoding=encoding, timeout=timeouts.command)
                accepted.append(rcpt)
                results[rcpt] = _reply(response.code, response.message, remote)
            except aiosmtplib.SMTPRecipientRefused as exc:
                results[rcpt] = _reply(exc.code, exc.message, remote)
                if exc.code == 421:
                    break
        if not accepted:
            for rcpt in recipients:
                results.setdefault(rcpt, _temporary("connection closed before RCPT", remote))
            return results
        try:
            response = await client.data(message, timeout=timeouts.data)
            done = _reply(response.code, response.message, remote)
        except aiosmtplib.SMTPResponseException as exc:
            done = _reply(exc.code, exc.message, remote)
        for rcpt in accepted:
            results[rcpt] = done
        try:
            await client.quit(timeout=timeouts.command)
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
            pass
        return results
    except _NextHop:
        raise
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError, asyncio.TimeoutError, ValueError, UnicodeError) as exc:
        fail = _temporary(f"{type(exc).__name__}: {exc}", remote)
        return {r: results[r] if r in results and not results[r].ok else fail for r in recipients}
