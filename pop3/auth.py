"""POP3 AUTHORIZATION state: STLS (RFC 2595), USER/PASS (RFC 1939), AUTH PLAIN (RFC 5034).

Replaces Twisted's handlers: its AUTH PLAIN with an initial response raises and drops the
connection, its ``state_AUTH`` only understands CRAM-MD5 style "user response" blobs, and it has
no STLS (docs/libraries.md, Twisted POP3). Plaintext credentials are refused before TLS unless the peer is on
loopback and ``tls.allow_plaintext_auth_on_loopback`` allows it. A wrong password and an unknown
account get the same ``-ERR [AUTH]``; the Authenticator takes the same time for both.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import logging

from twisted.internet import defer, task

from pop3 import replies as R
from pop3.maildrop import Maildrop
from mailserver.policy.logins import Login
from mailserver.policy.passwords import must_change_first

log = logging.getLogger(__name__)

#: ``login`` has already answered (a blocked address)
_ANSWERED = object()
#: Wrong credentials tolerated per connection before it is closed (as Dovecot does): password
#: guessing then costs a new connection every few tries instead of one line per argon2 verify.
MAX_AUTH_FAILURES = 3


class AuthorizationCommands:
    """Mixed into ``POP3Server``; uses its ``ctx``, ``reply`` and session attributes."""

    def cmd_STLS(self, args: bytes) -> None:
        if args:
            self.reply(R.ERR_SYNTAX)
        elif self.tls_active:
            self.reply(R.ERR_TLS_ACTIVE)
        elif self.ctx.tls is None:
            self.reply(R.ERR_TLS_UNAVAILABLE)
        else:
            self.reply(R.STLS_GO)
            self.discard_pipelined_input()
            self._user = None
            self.transport.startTLS(self.ctx.tls)
            self.tls_active = True

    def cmd_USER(self, args: bytes) -> None:
        self._user = None
        if not self.plaintext_auth_allowed():
            self.reply(R.ERR_PLAINTEXT)
        elif not args.strip():
            self.reply(R.ERR_SYNTAX)
        else:
            self._user = args.strip()
            self.reply(R.USER_OK)

    def cmd_PASS(self, args: bytes) -> defer.Deferred | None:
        user, self._user = self._user, None
        if user is None:
            self.reply(R.ERR_USER_FIRST)
            return None
        # The password is the rest of the line, spaces included (RFC 1939 allows them).
        return self.login(user, args)

    def cmd_AUTH(self, args: bytes) -> defer.Deferred | None:
        words = args.split()
        if not words:
            mechanisms = [b"PLAIN"] if self.plaintext_auth_allowed() else []
            self.transport.write(b"\r\n".join([R.SASL_MECHANISMS, *mechanisms, b"."]) + b"\r\n")
            return None
        if words[0].upper() != b"PLAIN":
            self.reply(R.ERR_MECHANISM)
        elif not self.plaintext_auth_allowed():
            self.reply(R.ERR_PLAINTEXT)
        elif len(words) > 2:
            self.reply(R.ERR_SYNTAX)
        elif len(words) == 2:
            return self._sasl_plain(words[1])  # RFC 5034 initial response
        else:
            self._sasl_pending = True
            self.reply(R.SASL_CONTINUE)
        return None

    def sasl_response(self, line: bytes) -> defer.Deferred | None:
        """The client's answer to our empty "+ " challenge."""
        line = line.strip()
        if line == b"*":
            self.reply(R.ERR_CANCELLED)
            return None
        return self._sasl_plain(line)

    def _sasl_plain(self, encoded: bytes) -> defer.Deferred | None:
        try:
            message = b"" if encoded == b"=" else base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            self.reply(R.ERR_BASE64)
            return None
        fields = message.split(b"\0")
        if len(fields) != 3 or not fields[1] or (fields[0] and fields[0] != fields[1]):
            # Malformed, or asks to act as someone else (no proxy authorisation here: R-ACC-1).
            self.reply(R.ERR_AUTH)
            return None
        return self.login(fields[1], fields[2])

    def login(self, user: bytes, password: bytes) -> defer.Deferred | None:
        """Verify in a worker thread (argon2), lock the maildrop, snapshot it. Through the login
        guard (mailserver/accounts/guard.py) when there is one: a blocked address gets
        ``-ERR [SYS/TEMP]`` unchecked, failures are delayed and counted, each login logged."""
        username = user.decode("utf-8", "replace")

        async def check():
            try:
                secret = password.decode("utf-8")
            except UnicodeDecodeError:
                return None, "encoding"
            account = await self.ctx.run_in_thread(self.ctx.auth.authenticate, username, secret)
            return account, "" if account is not None else "credentials"

        guard = self.ctx.logins
        if guard is None:
            d = defer.ensureDeferred(check())
            d.addCallback(lambda found: found[0])
        else:
            reactor = self.ctx.reactor
            d = defer.ensureDeferred(guard.attempt(
                "pop3", self.peer_host(), username, check, thread=self.ctx.run_in_thread,
                sleep=lambda seconds: task.deferLater(reactor, seconds, lambda: None)))
            d.addCallback(self._guarded)
        d.addCallbacks(self._authenticated, self._auth_error, callbackArgs=(username,))
        return d

    def _guarded(self, attempt):
        if attempt.refused:
            self.reply(R.ERR_SYS_TEMP_BLOCKED)
            self.close()
            return _ANSWERED
        return attempt.account

    def _authenticated(self, account, username: str) -> defer.Deferred | None:
        if account is _ANSWERED:
            return None
        if account is None:
            self._auth_failed(username)
            return None
        if self._closing:
            return None
        if self.ctx.passwords is not None and must_change_first(self.ctx.passwords, account, _dt.datetime.now(_dt.UTC)):
            url = (self.ctx.password_url or "the portal").encode("ascii", "replace")
            self.reply(b"-ERR [AUTH] Change your initial password first (doi mat khau ban dau): " + url)  # R-PASS-1
            return None
        # In a worker thread: with several processes the lock is taken in the database.
        d = self.ctx.run_in_thread(self.ctx.locks.acquire, account.id)
        d.addCallbacks(self._locked, self._maildrop_failed, callbackArgs=(account,))
        return d

    def _locked(self, taken: bool, account) -> defer.Deferred | None:
        if not taken:
            log.info("pop3 maildrop in use account=%s", account.id)
            self.reply(R.ERR_IN_USE)
            return None
        self.account_id = account.id
        if self._closing:  # the client left while the lock was taken
            self.release_maildrop()
            return None
        if self.ctx.guard is not None:
            self.ctx.guard.register(self, Login.of(account))
        d = self.ctx.run_in_thread(Maildrop.load, self.ctx.store, account.id)
        d.addCallbacks(self._maildrop_loaded, self._maildrop_failed)
        return d

    def _auth_failed(self, username: str) -> None:
        self.auth_failures += 1
        if self.ctx.logins is None:  # the guard logs each login itself
            log.info("pop3 login failed user=%r peer=%s failures=%d", username, self.transport.getPeer(), self.auth_failures)
        self.reply(R.ERR_AUTH)
        if self.auth_failures >= MAX_AUTH_FAILURES:
            self.close()

    def _maildrop_loaded(self, maildrop: Maildrop) -> None:
        if self._closing:
            self.release_maildrop()
            return
        self.enter_transaction(maildrop)
        self.reply(R.maildrop_ok(*maildrop.stat()))

    def _maildrop_failed(self, failure) -> None:
        log.error("pop3 could not open the maildrop",
                  exc_info=(failure.type, failure.value, failure.getTracebackObject()))
        self.release_maildrop()
        self.reply(R.ERR_SYS_TEMP)

    def _auth_error(self, failure) -> None:
        log.error("pop3 authentication failed with an error",
                  exc_info=(failure.type, failure.value, failure.getTracebackObject()))
        self.reply(R.ERR_SYS_TEMP)
