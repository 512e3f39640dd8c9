"""SpamAssassin ``spamd`` client (aiospamc): the score and rule names of one message.

``SYMBOLS`` is asked rather than ``PROCESS``/``HEADERS``: spamd's own rewrite of the message
(report_safe) would change what the user receives; the X-Spam-* headers are ours
(``smtp.filters.policy.spam_headers``). aiospamc logs through loguru, whose default sink is
stderr: its output is turned off here, our log says what happened.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiospamc.client import Client
from aiospamc.connections import TcpConnectionManager, Timeout
from aiospamc.requests import Request
from loguru import logger

from config.filters import Spamd

logger.disable("aiospamc")


@dataclass(frozen=True, slots=True)
class SpamResult:
    score: float
    required: float
    rules: tuple[str, ...]


class SpamdClient:
    def __init__(self, cfg: Spamd) -> None:
        self.cfg = cfg
        self._client = Client(TcpConnectionManager(cfg.host, cfg.port, timeout=Timeout(total=cfg.timeout)))

    async def check(self, message: bytes) -> SpamResult:
        """Raises ``TimeoutError`` when spamd does not answer within ``timeout``, ``OSError`` or an
        aiospamc error when it cannot be reached or fails."""
        response = await asyncio.wait_for(self._client.request(Request("SYMBOLS", body=message)), self.cfg.timeout)
        spam = response.headers["Spam"]
        rules = tuple(r.strip() for r in response.body.decode("ascii", "replace").split(",") if r.strip())
        return SpamResult(float(spam.score), float(spam.threshold), rules)
