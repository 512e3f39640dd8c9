"""Password hashing and login checks shared by IMAP, POP3 and SMTP submission.

argon2id with parameters set in config (the library's defaults cost ~105 ms per verify on the
2-core reference host, capping the server near 11 logins/s; docs/libraries.md, argon2-cffi). Successful
verifications are remembered for a short while, keyed by a keyed hash of the password so no
plain password is kept, as Dovecot's auth cache does: clients that reconnect every minute do
not pay argon2 again. Unknown users cost a full verify against a dummy hash, so a wrong address
and a wrong password take the same time and give the same answer.

``authenticate`` blocks (argon2): front ends call it in a worker thread.

An account that `ldap sync` created is LDAP-backed (``{LDAP}<dn>`` in place of a hash): its
password is checked by a bind to the agency's directory instead (R-PROTO-3,
mailserver/directory_sync/bind.py), inside this same call, so the login guard, its delays and
the login log line are the front ends' as for local passwords; a good bind is cached the same way.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import logging
import os
import threading
import time
import unicodedata
from typing import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from config.ldap import Ldap
from config.settings import Passwords
from mailserver.directory_sync.connection import LDAP_MARK, is_ldap_backed
from storage.api import LOGIN_STATES, Account, Store

log = logging.getLogger(__name__)
LOGIN_RECORD_INTERVAL = _dt.timedelta(minutes=5)


def make_hasher(settings: Passwords) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.time_cost, memory_cost=settings.memory_cost, parallelism=settings.parallelism
    )


def _normalise(password: str) -> str:
    # A Vietnamese password typed on another system may arrive decomposed (R-TEXT-1).
    return unicodedata.normalize("NFC", password)


def hash_password(settings: Passwords, plain: str) -> str:
    return make_hasher(settings).hash(_normalise(plain))


class Authenticator:
    def __init__(self, store: Store, settings: Passwords, *, clock: Callable[[], float] = time.monotonic,
                 ldap: Ldap | None = None) -> None:
        self._store = store
        self._settings = settings
        self._ldap = ldap if ldap is not None and ldap.enabled else None
        self._hasher = make_hasher(settings)
        self._clock = clock
        self._key = os.urandom(32)
        self._cache: dict[tuple[int, bytes], tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._dummy = self._hasher.hash(os.urandom(16).hex())

    def _cache_key(self, account_id: int, password: str) -> tuple[int, bytes]:
        return account_id, hmac.new(self._key, password.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()

    def _cached(self, account: Account, password: str) -> bool:
        key = self._cache_key(account.id, password)
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return False
            expires, pw_hash = entry
            if expires < self._clock() or pw_hash != account.password_hash:
                del self._cache[key]
                return False
            return True

    def _remember(self, account: Account, password: str) -> None:
        if self._settings.cache_seconds <= 0:
            return
        now = self._clock()
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache = {k: v for k, v in self._cache.items() if v[0] >= now}
            self._cache[self._cache_key(account.id, password)] = (now + self._settings.cache_seconds, account.password_hash or "")

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account if ``password`` is right and the account may log in, else None."""
        password = _normalise(password)
        account = self._store.accounts.get_account(username.strip()) if "@" in username else None
        if account is None or not account.password_hash:
            self._verify(self._dummy, password)
            return None
        if not self._cached(account, password):
            if is_ldap_backed(account.password_hash):
                if not self._bind(account, password):
                    return None
            elif not self._verify(account.password_hash, password):
                return None
            else:
                self._maybe_rehash(account, password)
            self._remember(account, password)
        if account.state not in LOGIN_STATES:
            return None
        now = _dt.datetime.now(_dt.UTC)
        try:
            # Inactivity rules (R-LIFE-3..5) count in months: one write per few minutes is enough.
            if account.last_login_at is None or now - account.last_login_at > LOGIN_RECORD_INTERVAL:
                self._store.accounts.record_login(account.id, now)
        except Exception:  # a login must not fail because the timestamp could not be written
            log.exception("could not record login of %s", account.address)
        return account

    def _bind(self, account: Account, password: str) -> bool:
        """R-PROTO-3: the directory decides; without ``ldap.url`` an LDAP-backed account cannot log in."""
        if self._ldap is None:
            log.warning("%s is LDAP-backed but ldap.url is not set: login refused", account.address)
            return False
        from mailserver.directory_sync.bind import check_password

        return check_password(self._ldap, account.address, password, (account.password_hash or "")[len(LDAP_MARK):])

    def _verify(self, pw_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(pw_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _maybe_rehash(self, account: Account, password: str) -> None:
        """Parameters changed in config: upgrade the stored hash on the next good login."""
        try:
            if self._hasher.check_needs_rehash(account.password_hash or ""):
                self._store.accounts.set_password(account.id, self._hasher.hash(password), rehash=True)
        except Exception:
            log.exception("rehash of %s failed", account.address)
