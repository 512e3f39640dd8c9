"""Commands of any state and of the not-authenticated state: CAPABILITY, NOOP, LOGOUT, ID,
ENABLE, STARTTLS, LOGIN, AUTHENTICATE (PLAIN, with SASL-IR, RFC 4959).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

from twisted.internet import defer

from twisted.internet import interfaces
from twisted.internet.threads import deferToThread

from imap.args import ArgParsers as A
from mailserver.policy.logins import Login
from imap.wire import Atom, ParseError, String
from storage.api import AccountState
from storage.errors import NoPerm

OK, NO, BAD = b"OK", b"NO", b"BAD"
AUTH_FAILED = (NO, b"[AUTHENTICATIONFAILED] Authentication failed")
AUTHZ_FAILED = (NO, b"[AUTHORIZATIONFAILED] Not authorized to act as that mailbox")
PRIVACY = (NO, b"[PRIVACYREQUIRED] Plain-text authentication is not allowed without TLS")

#: Extensions advertised: each is implemented in full (issue 3 asks for nothing advertised early).
EXTENSIONS = (
    b"LITERAL+", b"SASL-IR", b"ID", b"ENABLE", b"IDLE", b"NAMESPACE", b"UIDPLUS", b"MOVE",
    b"UNSELECT", b"CHILDREN", b"SPECIAL-USE", b"ESEARCH", b"SORT", b"CONDSTORE", b"QRESYNC",
    b"LIST-EXTENDED", b"LIST-STATUS", b"CREATE-SPECIAL-USE", b"STATUS=SIZE", b"COMPRESS=DEFLATE",
    b"UTF8=ACCEPT",
)
#: how long the quota resource names of an account are remembered
QUOTA_NAMES_SECONDS = 60
ENABLEABLE = {b"CONDSTORE", b"QRESYNC", b"UTF8=ACCEPT"}


class AuthCommands:
    # -- state helpers -------------------------------------------------------------------------
    _secure = None  # fixed when COMPRESS wraps the transport (the wrapper hides ISSLTransport)

    def is_secure(self) -> bool:
        if self._secure is not None:
            return self._secure
        return self.startedTLS or interfaces.ISSLTransport(self.transport, None) is not None

    def plaintext_ok(self) -> bool:
        if self.is_secure():
            return True
        host = getattr(self.transport.getPeer(), "host", "")
        loopback = host.startswith("127.") or host == "::1"
        return loopback and self.sc.settings.tls.allow_plaintext_auth_on_loopback

    def listCapabilities(self) -> list[bytes]:
        caps = [b"IMAP4rev1"]
        if self.state == "unauth":
            if self.sc.tls is not None and not self.is_secure():
                caps.append(b"STARTTLS")
            if self.plaintext_ok():
                caps.append(b"AUTH=PLAIN")
            else:
                caps.append(b"LOGINDISABLED")
        caps.extend(EXTENSIONS)
        caps.extend(self.quota_capabilities())
        caps.append(b"APPENDLIMIT=%d" % self.max_literal)
        return caps

    def sendServerGreeting(self) -> None:
        self.write_lines([b"* OK [CAPABILITY " + b" ".join(self.listCapabilities()) + b"] " + self.IDENT])

    # -- any state -----------------------------------------------------------------------------
    def do_CAPABILITY(self, tag):
        self.untagged(b"CAPABILITY " + b" ".join(self.listCapabilities()))
        return OK, b"CAPABILITY completed"

    unauth_CAPABILITY = auth_CAPABILITY = select_CAPABILITY = (do_CAPABILITY,)

    async def do_NOOP(self, tag):
        if self.selected is not None:
            await self.poll_changes()
        return OK, b"NOOP completed"

    unauth_NOOP = auth_NOOP = select_NOOP = (do_NOOP,)

    def do_LOGOUT(self, tag):
        self.untagged(b"BYE Logging out")
        self._respond(OK, tag, b"LOGOUT completed")
        self.state = "logout"
        self.deselect()
        self.transport.loseConnection()

    unauth_LOGOUT = auth_LOGOUT = select_LOGOUT = (do_LOGOUT,)

    def do_ID(self, tag, params):
        """RFC 2971: the client's list is only validated; we name ourselves."""
        if params is not None and not isinstance(params, list):
            raise ParseError("ID expects a list or NIL")
        if isinstance(params, list) and len(params) % 2:
            raise ParseError("ID list needs field/value pairs")
        self.untagged(b'ID ("name" "mailserver" "version" "0.1")')
        return OK, b"ID completed"

    def arg_id(self, tokens):
        if tokens and isinstance(tokens[0], Atom) and tokens[0].upper() == b"NIL":
            return None, tokens[1:]
        return A.arg_plist(self, tokens)

    unauth_ID = auth_ID = select_ID = (do_ID, arg_id)

    def do_ENABLE(self, tag, names):
        """RFC 5161: only extensions that change server behaviour are enableable."""
        if not names:
            raise ParseError("ENABLE needs capability names")
        before = set(self.enabled)
        requested = [bytes(n).upper() for n in names if isinstance(n, Atom)]
        for cap in requested:
            if cap in ENABLEABLE:
                self.enabled.add(cap)
                if cap == b"QRESYNC":  # implies CONDSTORE (RFC 7162 §3.2.3)
                    self.enabled.add(b"CONDSTORE")
        newly = [c for c in dict.fromkeys(requested) if c in ENABLEABLE and c not in before]
        self.untagged(b"ENABLED" + b"".join(b" " + c for c in newly))
        return OK, b"ENABLE completed"

    auth_ENABLE = select_ENABLE = (do_ENABLE, A.arg_rest)

    # -- not authenticated ---------------------------------------------------------------------
    def do_STARTTLS(self, tag):
        if self.is_secure():
            return BAD, b"TLS is already active"
        if self.sc.tls is None:
            return NO, b"TLS not available"
        self._respond(OK, tag, b"Begin TLS negotiation now")
        # Anything pipelined after STARTTLS arrived in plain text: drop it (command injection).
        self._buf.clear()
        self._skip_line = False
        self.transport.startTLS(self.sc.tls)
        self.startedTLS = True
        return None

    unauth_STARTTLS = (do_STARTTLS,)

    async def do_LOGIN(self, tag, user, password):
        if not self.plaintext_ok():
            return PRIVACY
        return await self.login(user, password)

    unauth_LOGIN = (do_LOGIN, A.arg_astring, A.arg_astring)

    async def login(self, user: bytes, password: bytes, authzid: bytes = b""):
        try:
            username, secret, authz = user.decode("utf-8"), password.decode("utf-8"), authzid.decode("utf-8")
        except UnicodeDecodeError:
            return AUTH_FAILED
        actor = await self.authenticate(username, secret)
        if actor is None or self._closed:
            return AUTH_FAILED
        result = await deferToThread(self._login_sync, actor, authz)
        if result is None or self._closed:
            return AUTHZ_FAILED
        self.actor, self.account, self.quota_resources = actor, *result
        if self.sc.guard is not None:
            logins = [Login.of(actor)]
            if self.account.id != actor.id:  # a delegate in a unit mailbox: the unit's state counts
                logins.append(Login.of(self.account, check_password=False))
            self.sc.guard.register(self, *logins)
        self.state = "auth"
        self.autologout = self.sc.settings.limits.imap_autologout
        url = self.sc.settings.password_url()
        if actor.state is AccountState.MUST_CHANGE_PASSWORD and url:  # R-PASS-1: clients show ALERTs
            self.untagged(b"OK [ALERT] Mat khau ban dau phai duoc doi tai " + url.encode("ascii", "replace")
                          + b" / Please change your initial password at " + url.encode("ascii", "replace"))
        return OK, b"[CAPABILITY " + b" ".join(self.listCapabilities()) + b"] Logged in"

    async def authenticate(self, username: str, secret: str):
        """``auth.authenticate`` in a thread, once for identical credentials presented at the
        same time: when hundreds of clients of one account reconnect together, they would all
        miss the authenticator's cache and each pay the argon2 verification (issue 3)."""
        key = (username, hmac.new(self.sc.login_key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).digest())
        waiters = self.sc.logins_in_flight.get(key)
        if waiters is not None:
            d = defer.Deferred()
            waiters.append(d)
            return await d
        self.sc.logins_in_flight[key] = waiters = []
        try:
            account = await deferToThread(self.sc.auth.authenticate, username, secret)
        except BaseException as e:
            del self.sc.logins_in_flight[key]
            for d in waiters:
                d.errback(e)
            raise
        del self.sc.logins_in_flight[key]
        for d in waiters:
            d.callback(account)
        return account

    def _login_sync(self, actor, authzid: str):
        """In a thread, after the password: (account acted as, quota resource names), or None
        when ``actor`` may not act as ``authzid`` (RFC 4616)."""
        account = actor
        if authzid:
            if self.sc.org is None:
                return None
            try:
                account, _rights = self.sc.org.resolve_login(actor, authzid, via="imap")
            except NoPerm:
                return None
        return account, self.quota_resource_names(account)

    def quota_resource_names(self, account) -> frozenset[bytes]:
        """Which RFC 9208 resources the account has (for QUOTA=RES-*), remembered for a minute:
        they change only when the operator changes a limit, and thousands of clients logging
        in at once should not each ask the database (issue 3)."""
        now = time.monotonic()
        cached = self.sc.quota_names.get(account.id)
        if cached is not None and cached[0] > now:
            return cached[1]
        names = frozenset(name.encode("ascii") for name, _, _ in self.sc.quota.imap_quota(account))
        if len(self.sc.quota_names) > 100_000:
            self.sc.quota_names.clear()
        self.sc.quota_names[account.id] = (now + QUOTA_NAMES_SECONDS, names)
        return names

    async def do_AUTHENTICATE(self, tag, mechanism, initial):
        if mechanism.upper() != b"PLAIN":
            return NO, b"Unsupported authentication mechanism"
        if not self.plaintext_ok():
            return PRIVACY
        if initial is None:
            self.write_lines([b"+ "])
            response = await self.next_line()
        else:
            response = initial
        if response == b"*":
            return BAD, b"AUTHENTICATE cancelled"
        if response == b"=":
            response = b""
        try:
            decoded = base64.b64decode(response, validate=True)
        except (binascii.Error, ValueError):
            return BAD, b"Invalid base64"
        parts = decoded.split(b"\0")
        if len(parts) != 3:
            return AUTH_FAILED
        authz, authc, password = parts
        return await self.login(authc, password, authz if authz != authc else b"")

    def arg_initial_response(self, tokens):
        if not tokens:
            return None, tokens
        if not isinstance(tokens[0], (Atom, String)):
            raise ParseError("Invalid initial response")
        return bytes(tokens[0]), tokens[1:]

    unauth_AUTHENTICATE = (do_AUTHENTICATE, A.arg_atom, arg_initial_response)

