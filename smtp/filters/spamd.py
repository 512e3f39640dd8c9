"""SpamAssassin ``spamd`` client: the score and rule names of one message (SPAMC/1.5 protocol).

``SYMBOLS`` is asked rather than ``PROCESS``/``HEADERS``: spamd's own rewrite of the message
(report_safe) would change what the user receives; the X-Spam-* headers are ours
(``smtp.filters.policy.spam_headers``).

Not aiospamc: measured with bench/filter_clients.py it costs our process ~0.8 ms of CPU per
message (a loguru record per step, a client object per request), four times the whole budget of
the filter clients; the protocol is one request and one reply (``smtp.filters.exchange``).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from config.filters import Spamd
from smtp.filters.exchange import exchange

_STATUS = re.compile(rb"^SPAMD/\d+\.\d+ +(\d+) +(.*)$")
_SPAM = re.compile(r"^\s*(true|false|yes|no)\s*;\s*(-?[\d.]+)\s*/\s*(-?[\d.]+)\s*$", re.I)


class SpamdError(Exception):
    """spamd answered with an error or something that is not a SPAMD reply."""


@dataclass(frozen=True, slots=True)
class SpamResult:
    score: float
    required: float
    rules: tuple[str, ...]


def request(message: bytes) -> list[bytes]:
    return [b"SYMBOLS SPAMC/1.5\r\nContent-length: %d\r\n\r\n" % len(message), message]


def parse_reply(reply: bytes) -> SpamResult:
    """``SPAMD/1.1 0 EX_OK``, headers (``Spam: True ; 7.2 / 5.0``), blank line, rule names."""
    head, sep, body = reply.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = _STATUS.match(lines[0])
    if not sep or status is None:
        raise SpamdError(f"not a SPAMD reply: {reply[:80]!r}")
    if status.group(1) != b"0":
        raise SpamdError(f"spamd error {status.group(1).decode()} {status.group(2)[:80].decode('ascii', 'replace')}")
    for line in lines[1:]:
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.strip().lower() == "spam":
            m = _SPAM.match(value)
            if m is None:
                break
            rules = tuple(r.strip() for r in body.decode("ascii", "replace").split(",") if r.strip())
            return SpamResult(float(m.group(2)), float(m.group(3)), rules)
    raise SpamdError(f"no Spam header in {head[:200]!r}")


class SpamdClient:
    def __init__(self, cfg: Spamd) -> None:
        self.cfg = cfg

    async def check(self, message: bytes) -> SpamResult:
        """``TimeoutError`` when spamd does not answer within ``timeout``, ``OSError`` when it
        cannot be reached, ``SpamdError`` when its answer is an error."""
        reply = await asyncio.wait_for(exchange(self.cfg.host, self.cfg.port, request(message), path=self.cfg.socket),
                                       self.cfg.timeout)  # fmt: skip
        return parse_reply(reply)
