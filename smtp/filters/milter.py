"""Milter client: the MTA side of the Sendmail milter protocol, version 6, as Postfix speaks it.

So that existing filters plug in (rspamd, OpenDKIM, OpenDMARC, ClamAV-milter). The conversation
runs once per message, at the end of DATA, with all the steps of the transaction replayed
(connect, HELO, MAIL, RCPT, DATA, headers, body, end of message): like Postfix's
``non_smtpd_milters`` the milter sees the whole transaction, only later. Actions offered: add,
insert and change header fields, and quarantine; replies honoured: accept, continue, reject,
tempfail, a custom reply code, discard (treated as quarantine: nothing accepted here is ever
dropped without a trace), skip (no more body).

Written here: the Python milter libraries on PyPI are milter (filter) sides, or a GPL test client
with a blocking socket; the protocol is small and documented (libmilter's mfdef.h).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass, field
from typing import Sequence

from config.filters import Milter
from smtp.filters.headers import Edit, field_value, split_fields

log = logging.getLogger("smtp.filters.milter")

VERSION = 6
# actions we allow the milter (SMFIF_*): ADDHDRS, CHGHDRS, QUARANTINE
ACTIONS = 0x01 | 0x10 | 0x20
# protocol steps the milter may ask us to skip (SMFIP_NO*) or not to wait a reply for (SMFIP_NR_*),
# and SMFIP_SKIP: everything except HDR_LEADSPC (values are sent without their leading space)
NO_CONNECT, NO_HELO, NO_MAIL, NO_RCPT, NO_BODY, NO_HDRS, NO_EOH = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40
NR_HDR, NO_UNKNOWN, NO_DATA, SKIP, RCPT_REJ = 0x80, 0x100, 0x200, 0x400, 0x800
NR_CONN, NR_HELO, NR_MAIL, NR_RCPT, NR_DATA, NR_UNKN, NR_EOH, NR_BODY = (
    0x1000, 0x2000, 0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000)  # fmt: skip
PROTOCOL = 0x1FFFFF & ~0x100000 & ~RCPT_REJ
CHUNK = 65535  # MILTER_CHUNK_SIZE

FINAL = {b"a", b"r", b"t", b"y", b"d"}


class MilterError(Exception):
    """The milter broke the protocol or closed the connection."""


@dataclass
class Outcome:
    action: str = "accept"  # accept | reject | tempfail
    reply: str | None = None  # the milter's own SMTP reply (SMFIR_REPLYCODE)
    edits: list[Edit] = field(default_factory=list)
    quarantine: str | None = None  # reason, when the milter asked to quarantine (or discard)


@dataclass(frozen=True, slots=True)
class Envelope:
    client_ip: str
    client_name: str
    helo: str
    sender: str
    recipients: Sequence[str]
    hostname: str  # our name: macro j
    queue_id: str  # macro i


def packet(cmd: bytes, data: bytes = b"") -> bytes:
    return struct.pack("!I", len(data) + 1) + cmd + data


def _z(*parts: str) -> bytes:
    return b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in parts)


def reply_text(data: bytes) -> str | None:
    """A valid SMTP reply from SMFIR_REPLYCODE (4xx/5xx, one line), else None."""
    text = data.rstrip(b"\0").decode("utf-8", "replace").strip()
    if len(text) >= 3 and text[:3].isdigit() and text[0] in "45" and "\r" not in text and "\n" not in text:
        return text
    return None


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def send(self, cmd: bytes, data: bytes = b"") -> None:
        self.writer.write(packet(cmd, data))

    async def recv(self) -> tuple[bytes, bytes]:
        while True:
            try:
                head = await self.reader.readexactly(4)
                (size,) = struct.unpack("!I", head)
                if not 1 <= size <= 1024 * 1024:
                    raise MilterError(f"bad packet length {size}")
                body = await self.reader.readexactly(size)
            except asyncio.IncompleteReadError as e:
                raise MilterError("connection closed") from e
            if body[:1] != b"p":  # SMFIR_PROGRESS: keep waiting
                return body[:1], body[1:]


class MilterClient:
    def __init__(self, cfg: Milter) -> None:
        self.cfg = cfg

    async def check(self, env: Envelope, head: bytes, body: bytes) -> Outcome:
        """One conversation; ``TimeoutError``, ``OSError`` or ``MilterError`` when the milter gives
        no usable answer (the caller applies ``on_failure``)."""
        return await asyncio.wait_for(self._check(env, head, body), self.cfg.timeout)

    async def _check(self, env: Envelope, head: bytes, body: bytes) -> Outcome:
        reader, writer = await asyncio.open_connection(self.cfg.host, self.cfg.port)
        conn = _Conn(reader, writer)
        try:
            outcome = await self._converse(conn, env, head, body)
            conn.send(b"Q")  # SMFIC_QUIT
            await writer.drain()
            return outcome
        finally:
            writer.close()

    async def _converse(self, conn: _Conn, env: Envelope, head: bytes, body: bytes) -> Outcome:
        conn.send(b"O", struct.pack("!III", VERSION, ACTIONS, PROTOCOL))
        await conn.writer.drain()
        cmd, data = await conn.recv()
        if cmd != b"O" or len(data) < 12:
            raise MilterError(f"bad option negotiation reply {cmd!r}")
        _version, actions, proto = struct.unpack("!III", data[:12])
        if proto & ~PROTOCOL:
            raise MilterError(f"milter asks for protocol steps we do not offer: {proto:#x}")
        actions &= ACTIONS

        async def step(cmd: bytes, data: bytes, skip: int, no_reply: int, macros: dict[str, str] | None = None) -> tuple[bytes, bytes] | None:
            """Send one step; its reply, or None when the milter wants neither step nor reply."""
            if proto & skip:
                return None
            if macros:
                conn.send(b"D", cmd + _z(*(x for kv in macros.items() for x in kv)))
            conn.send(cmd, data)
            if proto & no_reply:
                return None
            await conn.writer.drain()
            return await conn.recv()

        family = b"6" if ":" in env.client_ip else b"4"
        steps = [
            (b"C", _z(env.client_name or f"[{env.client_ip}]")[:-1] + b"\0" + family + struct.pack("!H", 0) + _z(env.client_ip),
             NO_CONNECT, NR_CONN, {"j": env.hostname, "{daemon_name}": "mailserver", "{client_addr}": env.client_ip}),
            (b"H", _z(env.helo), NO_HELO, NR_HELO, None),
            (b"M", _z(f"<{env.sender}>"), NO_MAIL, NR_MAIL, {"i": env.queue_id, "{mail_addr}": env.sender}),
        ]
        steps += [(b"R", _z(f"<{r}>"), NO_RCPT, NR_RCPT, {"{rcpt_addr}": r}) for r in env.recipients]
        steps.append((b"T", b"", NO_DATA, NR_DATA, None))
        steps += [(b"L", _z(field_name_raw(f), field_value(f)), NO_HDRS, NR_HDR, None) for f in split_fields(head)]
        steps.append((b"N", b"", NO_EOH, NR_EOH, None))
        outcome = Outcome()
        for cmd, data, skip, no_reply, macros in steps:
            got = await step(cmd, data, skip, no_reply, macros)
            if got is not None and got[0] != b"c":
                if self._final(got, outcome):
                    return outcome
        if not proto & NO_BODY:
            for start in range(0, len(body), CHUNK):
                got = await step(b"B", body[start : start + CHUNK], 0, NR_BODY)
                if got is None or got[0] == b"c":
                    continue
                if got[0] == b"s":  # SMFIR_SKIP: enough body
                    break
                if self._final(got, outcome):
                    return outcome
        conn.send(b"E")  # SMFIC_BODYEOB: modifications, then the final reply
        await conn.writer.drain()
        while True:
            cmd, data = await conn.recv()
            if cmd in FINAL or cmd == b"c":
                self._final((cmd, data), outcome)
                return outcome
            self._modification(cmd, data, actions, outcome)

    def _final(self, got: tuple[bytes, bytes], outcome: Outcome) -> bool:
        """Apply a reply to a step; True when it ends the conversation."""
        cmd, data = got
        if cmd in (b"a", b"c"):
            outcome.action = "accept"
        elif cmd == b"r":
            outcome.action = "reject"
        elif cmd == b"t":
            outcome.action = "tempfail"
        elif cmd == b"y":
            outcome.reply = reply_text(data)
            outcome.action = "tempfail" if outcome.reply and outcome.reply[0] == "4" else "reject"
        elif cmd == b"d":
            outcome.quarantine = outcome.quarantine or f"{self.cfg.name} asked to discard"
            outcome.action = "accept"
        else:
            raise MilterError(f"unexpected reply {cmd!r}")
        return True

    def _modification(self, cmd: bytes, data: bytes, actions: int, outcome: Outcome) -> None:
        if cmd == b"h" and actions & 0x01:
            name, value = _strings(data, 2)
            outcome.edits.append(Edit("add", name, value))
        elif cmd in (b"i", b"m") and len(data) >= 4 and actions & (0x01 if cmd == b"i" else 0x10):
            (index,) = struct.unpack("!I", data[:4])
            name, value = _strings(data[4:], 2)
            outcome.edits.append(Edit("insert" if cmd == b"i" else "change", name, value, index))
        elif cmd == b"q" and actions & 0x20:
            outcome.quarantine = _strings(data, 1)[0] or self.cfg.name
        else:
            log.warning("milter %s: ignored action %r (not offered)", self.cfg.name, cmd)


def field_name_raw(field: bytes) -> str:
    return field.split(b":", 1)[0].strip().decode("utf-8", "surrogateescape")


def _strings(data: bytes, count: int) -> list[str]:
    parts = data.split(b"\0")
    parts += [b""] * (count - len(parts))
    return [p.decode("utf-8", "surrogateescape") for p in parts[:count]]
