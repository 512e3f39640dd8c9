"""Content filters of the MX (R-SEC-1): SpamAssassin, ClamAV, milters, DMARC.

``Filters`` holds one client per configured daemon; the DATA-stage pipeline checks in
``smtp.filters.checks`` use it through ``DataContext.filters``. Each filter decides one of: pass
(maybe with headers), file into Junk, refuse (5xx), or, when it does not answer in time, what its
``on_failure`` says (deliver with ``X-Filter-Unscanned``, or 451 4.7.1). Nothing is ever accepted
and then lost: a message is either refused at end of DATA or stored.
"""

from __future__ import annotations

import random

from config.filters import Filters as FilterSettings
from config.filters import RoleAddresses
from smtp.filters.clamd import ClamdClient
from smtp.filters.milter import MilterClient
from smtp.filters.spamd import SpamdClient


class Filters:
    def __init__(self, cfg: FilterSettings, roles: RoleAddresses | None = None, *, hostname: str = "localhost") -> None:
        self.cfg = cfg
        self.roles = roles or RoleAddresses()
        self.hostname = hostname
        self.spamd = SpamdClient(cfg.spamd) if cfg.spamd is not None else None
        self.clamd = ClamdClient(cfg.clamd) if cfg.clamd is not None else None
        self.milters = [MilterClient(m) for m in cfg.milters]
        self.sample = random.random  # DMARC pct sampling; a test may fix it

    @classmethod
    def from_settings(cls, settings) -> "Filters":
        """From ``config.settings.Settings``."""
        return cls(settings.filters, settings.role_addresses, hostname=settings.hostname)
