"""Commands of any state and of the not-authenticated state: CAPABILITY, NOOP, LOGOUT, ID,
ENABLE, STARTTLS, LOGIN, AUTHENTICATE (PLAIN, with SASL-IR, RFC 4959). Handlers take the
Session (imap/state.py) and the tag; imap/commands.py lists them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import hmac
import time
from datetime import UTC, datetime

from twisted.internet import defer, task
from twisted.internet.threads import deferToThread

from imap.acl import RIGHTS_CAPABILITY
from imap.args import arg_plist
from imap.op.quota import quota_capabilities
from imap.op.selected import poll_changes
from imap.state import AUTH, LOGOUT, UNAUTH, Session
from imap.wire import Atom, ParseError, String
from mailserver.policy.logins import Login
from mailserver.policy.loginlog import log_limit
from mailserver.policy.passwords import must_change_first
from mailserver.policy.maintenance import alert as maintenance_alert
from storage.api import AccountState
from storage.errors import NoPerm

OK, NO, BAD = b"OK", b"NO", b"BAD"

AUTH_FAILED = (NO, b"[AUTHENTICATIONFAILED] Authentication failed")
AUTHZ_FAILED = (NO, b"[AUTHORIZATIONFAILED] Not authorized to act as that mailbox")
BLOCKED = (NO, b"[UNAVAILABLE] Too many failed logins from your address; try again later")
TOO_MANY_SESSIONS = (NO, b"[UNAVAILABLE] Too many sessions of this account; try again later")
PRIVACY = (NO, b"[PRIVACYREQUIRED] Plain-text authentication is not allowed without TLS")

#: Extensions advertised: each is implemented in full (nothing is advertised before it works).
EXTENSIONS = (
    b"LITERAL+", b"SASL-IR", b"ID", b"ENABLE", b"IDLE", b"NAMESPACE", b"UIDPLUS", b"MOVE",
    b"UNSELECT", b"CHILDREN", b"SPECIAL-USE", b"ESEARCH", b"SORT", b"CONDSTORE", b"QRESYNC",
    b"LIST-EXTENDED", b"LIST-STATUS", b"CREATE-SPECIAL-USE", b"STATUS=SIZE", b"COMPRESS=DEFLATE",
    b"UTF8=ACCEPT", b"ACL", RIGHTS_CAPABILITY, b"LIST-MYRIGHTS", b"SEARCHRES", b"BINARY", b"MULTIAPPEND",
    b"CATENATE", b"OBJECTID", b"NOTIFY",
    b"THREAD=REFERENCES",  # RFC 5256 §3
    b"THREAD=ORDEREDSUBJECT",  # RFC 5256 §3
    b"ESORT",  # RFC 5267 §3
    b"CONTEXT=SEARCH", b"CONTEXT=SORT",  # RFC 5267 §4: RETURN (UPDATE), ADDTO/REMOVEFROM, CANCELUPDATE
    b"SORT=DISPLAY",  # RFC 5957
    b"PARTIAL",  # RFC 9394
    b"WITHIN",  # RFC 5032
    b"SAVEDATE",  # RFC 8514
)
#: how long the quota resource names of an account are remembered
QUOTA_NAMES_SECONDS = 60
ENABLEABLE = {b"CONDSTORE", b"QRESYNC", b"UTF8=ACCEPT", b"IMAP4rev2"}
_CANONICAL = {c.upper(): c for c in ENABLEABLE}


# -- state helpers -------------------------------------------------------------------------
def plaintext_ok(s: Session) -> bool:
    if s.conn.is_secure():
        return True
    host = peer_host(s)
    loopback = host.startswith("127.") or host == "::1"
    return loopback and s.ctx.settings.tls.allow_plaintext_auth_on_loopback


def capabilities(s: Session) -> list[bytes]:
    caps = [b"IMAP4rev1", b"IMAP4rev2"]
    if s.state == UNAUTH:
        if s.ctx.tls is not None and not s.conn.is_secure():
            caps.append(b"STARTTLS")
        if plaintext_ok(s):
            caps.append(b"AUTH=PLAIN")
        else:
            caps.append(b"LOGINDISABLED")
    caps.extend(EXTENSIONS)
    caps.extend(quota_capabilities(s))
    caps.append(b"APPENDLIMIT=%d" % s.max_literal)
    return caps


def greeting(s: Session, ident: bytes) -> None:
    s.write_lines([b"* OK [CAPABILITY " + b" ".join(capabilities(s)) + b"] " + ident])


# -- any state -----------------------------------------------------------------------------
def capability(s: Session, tag: bytes):
    s.untagged(b"CAPABILITY " + b" ".join(capabilities(s)))
    return OK, b"CAPABILITY completed"


async def noop(s: Session, tag: bytes):
    if s.selected is not None:
        await poll_changes(s)
    return OK, b"NOOP completed"


def logout(s: Session, tag: bytes):
    s.untagged(b"BYE Logging out")
    s.conn.respond(OK, tag, b"LOGOUT completed")
    s.state = LOGOUT
    s.deselect()
    s.conn.transport.loseConnection()


def id_(s: Session, tag: bytes, params):
    """RFC 2971: the client's list is only validated; we name ourselves."""
    if params is not None and not isinstance(params, list):
        raise ParseError("ID expects a list or NIL")
    if isinstance(params, list) and len(params) % 2:
        raise ParseError("ID list needs field/value pairs")
    s.untagged(b'ID ("name" "mailserver" "version" "0.1")')
    return OK, b"ID completed"


def arg_id(s: Session, tokens: list):
    if tokens and isinstance(tokens[0], Atom) and tokens[0].upper() == b"NIL":
        return None, tokens[1:]
    return arg_plist(s, tokens)


def enable(s: Session, tag: bytes, names):
    """RFC 5161: only extensions that change server behaviour are enableable."""
    if not names:
        raise ParseError("ENABLE needs capability names")
    before = set(s.enabled)
    requested = [_CANONICAL.get(bytes(n).upper(), bytes(n).upper()) for n in names if isinstance(n, Atom)]
    for cap in requested:
        if cap in ENABLEABLE:
            s.enabled.add(cap)
            if cap == b"QRESYNC":  # implies CONDSTORE (RFC 7162 §3.2.3)
                s.enabled.add(b"CONDSTORE")
            if cap == b"IMAP4rev2" and s.selected is not None:
                s.selected.drop_recent()
    newly = [c for c in dict.fromkeys(requested) if c in ENABLEABLE and c not in before]
    s.untagged(b"ENABLED" + b"".join(b" " + c for c in newly))
    return OK, b"ENABLE completed"


# -- not authenticated ---------------------------------------------------------------------
def starttls(s: Session, tag: bytes):
    if s.conn.is_secure():
        return BAD, b"TLS is already active"
    if s.ctx.tls is None:
        return NO, b"TLS not available"
    s.conn.respond(OK, tag, b"Begin TLS negotiation now")
    s.conn.start_tls()
    return None


async def login(s: Session, tag: bytes, user, password):
    if not plaintext_ok(s):
        return PRIVACY
    return await log_in(s, user, password)


async def log_in(s: Session, user: bytes, password: bytes, authzid: bytes = b""):
    """Through the login guard (mailserver/accounts/guard.py) when there is one: a blocked
    address gets NO [UNAVAILABLE] unchecked, failures are delayed and counted, each login logged."""
    username = user.decode("utf-8", "replace")

    async def check():
        try:
            secret, authz = password.decode("utf-8"), authzid.decode("utf-8")
        except UnicodeDecodeError:
            return None, "encoding"
        actor = await verify_password(s, username, secret)
        if actor is None:
            return None, "credentials"
        if s.closed:
            return None, "disconnected"
        result = await deferToThread(_login_sync, s, actor, authz)
        if result is None:
            return None, "authorization"
        return (actor, result), ""

    guard = s.ctx.logins
    if guard is None:
        found, reason = await check()
    else:
        attempt = await guard.attempt("imap", peer_host(s), username, check, thread=deferToThread,
                                      sleep=lambda seconds: task.deferLater(s.ctx.reactor, seconds, lambda: None))
        if attempt.refused:
            return BLOCKED
        found, reason = attempt.account, attempt.reason
    if found is None or s.closed:
        return AUTHZ_FAILED if reason == "authorization" else AUTH_FAILED
    actor, result = found
    if must_change_first(s.ctx.settings.passwords, actor, _dt.datetime.now(_dt.UTC)):  # R-PASS-1
        url = (s.ctx.settings.password_url() or "").encode("ascii", "replace")
        return NO, b"[EXPIRED] Mat khau ban dau phai duoc doi tai " + url + b" / Change your initial password at " + url
    if s.ctx.guard is not None:
        limit = s.ctx.settings.guard.imap_sessions_per_account
        if limit is not None and s.ctx.guard.count_for(actor.id, "imap") >= limit:
            log_limit("imap", peer_host(s), "sessions-per-account", f"account={actor.id}")
            return TOO_MANY_SESSIONS
    s.actor, s.account, s.quota_resources = actor, *result
    if s.ctx.guard is not None:
        logins = [Login.of(actor)]
        if s.account.id != actor.id:  # a delegate in a unit mailbox: the unit's state counts
            logins.append(Login.of(s.account, check_password=False))
        s.ctx.guard.register(s.conn, *logins)
    s.state = AUTH
    s.conn.autologout = s.ctx.settings.limits.imap_autologout
    url = s.ctx.settings.password_url()
    if actor.state is AccountState.MUST_CHANGE_PASSWORD and url:  # R-PASS-1: clients show ALERTs
        s.untagged(b"OK [ALERT] Mat khau ban dau phai duoc doi tai " + url.encode("ascii", "replace")
                   + b" / Please change your initial password at " + url.encode("ascii", "replace"))
    notice = maintenance_alert(s.ctx.settings.maintenance, datetime.now(UTC))
    if notice is not None:  # R-OPS-3: users are told in advance of maintenance downtime
        s.untagged(b"OK " + notice)
    return OK, b"[CAPABILITY " + b" ".join(capabilities(s)) + b"] Logged in"


def peer_host(s: Session) -> str:
    """The client's address: the PROXY header's when the connection came through a proxy."""
    return str(getattr(s.conn.transport.getPeer(), "host", ""))


async def verify_password(s: Session, username: str, secret: str):
    """``auth.authenticate`` in a thread, once for identical credentials presented at the
    same time: when hundreds of clients of one account reconnect together, they would all
    miss the authenticator's cache and each pay the argon2 verification."""
    key = (username, hmac.new(s.ctx.login_key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).digest())
    waiters = s.ctx.logins_in_flight.get(key)
    if waiters is not None:
        d = defer.Deferred()
        waiters.append(d)
        return await d
    s.ctx.logins_in_flight[key] = waiters = []
    try:
        account = await deferToThread(s.ctx.auth.authenticate, username, secret)
    except BaseException as e:
        del s.ctx.logins_in_flight[key]
        for d in waiters:
            d.errback(e)
        raise
    del s.ctx.logins_in_flight[key]
    for d in waiters:
        d.callback(account)
    return account


def _login_sync(s: Session, actor, authzid: str):
    """In a thread, after the password: (account acted as, quota resource names), or None
    when ``actor`` may not act as ``authzid`` (RFC 4616)."""
    account = actor
    if authzid:
        if s.ctx.org is None:
            return None
        try:
            account, _rights = s.ctx.org.resolve_login(actor, authzid, via="imap")
        except NoPerm:
            return None
    return account, quota_resource_names(s, account)


def quota_resource_names(s: Session, account) -> frozenset[bytes]:
    """Which RFC 9208 resources the account has (for QUOTA=RES-*), remembered for a minute:
    they change only when the operator changes a limit, and thousands of clients logging
    in at once should not each ask the database."""
    now = time.monotonic()
    cached = s.ctx.quota_names.get(account.id)
    if cached is not None and cached[0] > now:
        return cached[1]
    names = frozenset(name.encode("ascii") for name, _, _ in s.ctx.quota.imap_quota(account))
    if len(s.ctx.quota_names) > 100_000:
        s.ctx.quota_names.clear()
    s.ctx.quota_names[account.id] = (now + QUOTA_NAMES_SECONDS, names)
    return names


async def authenticate(s: Session, tag: bytes, mechanism, initial):
    if mechanism.upper() != b"PLAIN":
        return NO, b"Unsupported authentication mechanism"
    if not plaintext_ok(s):
        return PRIVACY
    if initial is None:
        s.write_lines([b"+ "])
        response = await s.conn.next_line()
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
    return await log_in(s, authc, password, authz if authz != authc else b"")


def arg_initial_response(s: Session, tokens: list):
    if not tokens:
        return None, tokens
    if not isinstance(tokens[0], (Atom, String)):
        raise ParseError("Invalid initial response")
    return bytes(tokens[0]), tokens[1:]
