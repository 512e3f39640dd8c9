"""Typed, frozen settings. Parsed once from YAML (config/loader.py) and handed to each package
as its slice; no module reads a global config (STYLE.md lesson 7).

Unknown keys are refused (``extra="forbid"``) so a typo in an operator's file stops start-up with
the key path instead of being silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Listener(_Frozen):
    address: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)


class Listeners(_Frozen):
    """A listener that is omitted (or null) is turned off."""

    smtp: Listener | None = None
    submission: Listener | None = None
    submissions: Listener | None = None
    imap: Listener | None = None
    imaps: Listener | None = None
    pop3: Listener | None = None
    pop3s: Listener | None = None
    web: Listener | None = None


class Database(_Frozen):
    url: str = "sqlite:///data/mail.db"
    # Bodies at or above this size are kept as fsynced files on SQLite (inline below it).
    inline_blob_limit: int = 256 * 1024
    # Most write jobs one group commit takes from the queue.
    max_batch: int = 256


class TLS(_Frozen):
    cert: Path = Path("data/tls/cert.pem")
    key: Path = Path("data/tls/key.pem")
    # LOGIN / AUTH PLAIN in clear text is refused except from loopback addresses when true.
    allow_plaintext_auth_on_loopback: bool = True


class Limits(_Frozen):
    max_message_size: int = 40 * 1024 * 1024  # whole message, bytes (SMTP SIZE, IMAP APPENDLIMIT)
    max_recipients: int = 1000
    smtp_spool_threshold: int = 1024 * 1024  # DATA kept in memory below this, spooled to disk above
    imap_max_literal: int = 64 * 1024 * 1024
    imap_max_line: int = 64 * 1024
    imap_autologout_unauth: int = 60  # seconds, before LOGIN
    imap_autologout: int = 30 * 60  # seconds, after LOGIN (RFC 3501: at least 30 minutes)
    smtp_timeout: int = 300


class Passwords(_Frozen):
    """argon2id parameters (R-PASS-*). Defaults chosen for a 2-core host: ~25 ms per verify."""

    time_cost: int = 2
    memory_cost: int = 19 * 1024  # KiB
    parallelism: int = 1
    cache_seconds: int = 300  # successful verifications remembered (like Dovecot's auth cache)
    min_length: int = 8
    min_classes: int = 3


class Search(_Frozen):
    fold_diacritics: bool = True


class Settings(_Frozen):
    profile: Literal["molisa", "lamdong", "most", "moj", "hcm-q4", "none"] = "none"
    hostname: str = "localhost"
    domains: tuple[str, ...] = ("example.gov.vn",)
    data_dir: Path = Path("data")
    database: Database = Database()
    listeners: Listeners = Listeners()
    tls: TLS = TLS()
    routes: dict[str, str] = {}
    limits: Limits = Limits()
    passwords: Passwords = Passwords()
    search: Search = Search()
