"""Typed error kinds of the mail store, mapped once per protocol.

    StoreError
     ├── NoQuota      the mailbox cannot take the message (R-QUOTA-1)
     ├── NotFound     account, folder or message does not exist
     ├── Exists       the name is already taken
     ├── TooBig       a single message exceeds a hard limit
     ├── NoPerm       the caller may not do this (R-ACC-1)
     ├── Invalid      the request itself is malformed (bad name, bad flag)
     └── Temp         a transient failure; the client should retry

Front ends map these in one place each (``smtp/replies.py``, ``imap/errors.py``); clients see
generic text, the detail goes to the log.
"""

from __future__ import annotations

import enum


class ErrorKind(enum.StrEnum):
    NOQUOTA = "NOQUOTA"
    NOTFOUND = "NOTFOUND"
    EXISTS = "EXISTS"
    TOOBIG = "TOOBIG"
    NOPERM = "NOPERM"
    INVALID = "INVALID"
    TEMP = "TEMP"


class StoreError(Exception):
    kind: ErrorKind = ErrorKind.TEMP

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.kind.value)
        self.detail = detail


class NoQuota(StoreError):
    kind = ErrorKind.NOQUOTA


class NotFound(StoreError):
    kind = ErrorKind.NOTFOUND


class Exists(StoreError):
    kind = ErrorKind.EXISTS


class TooBig(StoreError):
    kind = ErrorKind.TOOBIG


class NoPerm(StoreError):
    kind = ErrorKind.NOPERM


class Invalid(StoreError):
    kind = ErrorKind.INVALID


class Temp(StoreError):
    kind = ErrorKind.TEMP
