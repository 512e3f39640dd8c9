"""Helpers for the outbound tests: scripted remote SMTP servers on loopback, a movable clock,
and a worker over a real store. Remote servers are aiosmtpd (real sockets) or raw asyncio
protocols for the broken ones (garbage replies, silence)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.smtp import SMTP as AioSMTP

from config.settings import Dns, Dkim, Queue, Settings
from smtp.outbound.dns import Resolver
from smtp.outbound.service import OutboundService
from storage.api import AccountState

SENDER = "an@example.gov.vn"
DOMAIN = "example.gov.vn"


class Clock:
    """A clock the test moves; the worker reads it for due times and ages."""

    def __init__(self) -> None:
        self.now = _dt.datetime.now(_dt.UTC)

    def __call__(self) -> _dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += _dt.timedelta(seconds=seconds)


@dataclass
class Script:
    """What a scripted remote answers; lists are consumed per call, the last value repeats."""

    rcpt: list[str] = field(default_factory=lambda: ["250 2.1.5 OK"])
    data: list[str] = field(default_factory=lambda: ["250 2.0.0 queued"])
    data_delay: float = 0.0
    received: list[tuple[str, list[str], bytes, bool]] = field(default_factory=list)  # (from, to, bytes, tls)
    active: int = 0
    max_active: int = 0
    connections: int = 0

    @staticmethod
    def _next(items: list[str]) -> str:
        return items.pop(0) if len(items) > 1 else items[0]


class _Handler:
    def __init__(self, script: Script) -> None:
        self.s = script

    async def handle_RCPT(self, server, session, envelope, address, options):
        reply = self.s._next(self.s.rcpt)
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        self.s.active += 1
        self.s.max_active = max(self.s.max_active, self.s.active)
        try:
            if self.s.data_delay:
                await asyncio.sleep(self.s.data_delay)
            reply = self.s._next(self.s.data)
            if reply.startswith("2"):
                tls = session.ssl is not None
                self.s.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content, tls))
            return reply
        finally:
            self.s.active -= 1


async def scripted_remote(script: Script, *, tls_context: ssl.SSLContext | None = None, utf8: bool = True) -> asyncio.Server:
    loop = asyncio.get_running_loop()

    def make():
        script.connections += 1
        return AioSMTP(_Handler(script), hostname="remote.test", decode_data=False, tls_context=tls_context,
                       require_starttls=False, enable_SMTPUTF8=utf8)  # fmt: skip

    return await loop.create_server(make, "127.0.0.1", 0)


class _Raw(asyncio.Protocol):
    def __init__(self, greeting: bytes | None, reply: bytes | None) -> None:
        self.greeting, self.reply = greeting, reply

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.greeting:
            transport.write(self.greeting)

    def data_received(self, data: bytes) -> None:
        if self.reply:
            self.transport.write(self.reply)


async def raw_remote(greeting: bytes | None, reply: bytes | None = None) -> asyncio.Server:
    """A broken server: sends ``greeting`` then answers every line with ``reply`` (None: silence)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _Raw(greeting, reply), "127.0.0.1", 0)


def port_of(server: asyncio.Server) -> int:
    return server.sockets[0].getsockname()[1]


def settings_for(data_dir: Path, routes: dict[str, str], **queue) -> Settings:
    q = {"retry_first": 300, "poll": 1, "connect_timeout": 5, "command_timeout": 5, "data_timeout": 10, **queue}
    return Settings(
        hostname="mail.example.gov.vn", domains=(DOMAIN,), data_dir=data_dir, routes=routes,
        queue=Queue(**q), dkim=Dkim(), dns=Dns(static_only=True),
    )  # fmt: skip


def make_store(url: str, blob_dir: Path):
    from storage.sql import SqlStore

    store = SqlStore(url, blob_dir=blob_dir)
    store.accounts.add_domain(DOMAIN)
    if store.accounts.get_account(SENDER) is None:
        store.accounts.create_account(SENDER, "Nguyễn Văn An", None, state=AccountState.ACTIVE)
    return store


async def start_service(settings: Settings, store, *, resolver: Resolver | None = None, clock=None, mx_port: int = 25):
    kwargs = {"resolver": resolver or Resolver(static_only=True), "mx_port": mx_port}
    if clock is not None:
        kwargs["clock"] = clock
    service = OutboundService(settings, store, **kwargs)
    await service.start()
    return service


async def eventually(predicate, timeout: float = 15.0, interval: float = 0.05):
    """Await until ``predicate()`` (run in a thread: it may call the store) is truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await loop.run_in_executor(None, predicate)
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def message(subject: str = "Báo cáo tháng 11", to: str = "bob@other.gov.vn", body: str = "Nội dung báo cáo.\r\n") -> bytes:
    return (
        f"Return-Path: <{SENDER}>\r\n"
        f"From: Nguyễn Văn An <{SENDER}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
        "Date: Mon, 23 Nov 2026 10:00:00 +0700\r\nMessage-ID: <test-1@example.gov.vn>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
    ).encode()


def inbox_messages(store, address: str) -> list[bytes]:
    account = store.accounts.get_account(address)
    folder = store.folders.get_folder(account.id, "INBOX")
    view = store.messages.open_view(folder.id, claim_recent=False)
    return [store.messages.read_blob(m.blob) for m in store.messages.fetch(folder.id, view.uids)]
