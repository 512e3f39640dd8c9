"""One ManageSieve connection (RFC 5804): greeting with capabilities, STARTTLS, AUTHENTICATE
PLAIN through the shared authenticator and login guard (R-SEC-1), then the script commands on
the storage API (``store.sieve``). One method per verb; every store call runs in a worker thread.

Scripts are checked by the same compiler delivery uses (sieve.script), so a script the server
accepted is one it can run; errors name the line. Limits: ``sieve.max_script_size`` per script,
``sieve.max_scripts`` per account (``NO (QUOTA/MAXSIZE)``, ``NO (QUOTA/MAXSCRIPTS)``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import ssl
import unicodedata
from typing import Any, Protocol

from config.settings import Settings
from managesieve.wire import TooBig, WireError, quote, read_command
from sieve.interpret import MAX_REDIRECTS
from sieve.script import EXTENSIONS, ScriptError, compile_script
from storage.api import LOGIN_STATES, Account, Store
from storage.errors import Exists, Invalid, NotFound, StoreError

log = logging.getLogger("managesieve")

PROTOCOL = "managesieve"  # the login log's protocol= value


class Authenticator(Protocol):
    def authenticate(self, username: str, password: str) -> Account | None: ...


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _name(word: Any) -> str:
    """A script name (RFC 5804 1.6): NFC, no control characters, 1-255 characters."""
    text = word.decode("utf-8") if isinstance(word, bytes) else word
    text = unicodedata.normalize("NFC", text)
    if not text or len(text) > 255 or any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" for c in text):
        raise WireError("bad script name")
    return text


class Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, settings: Settings, store: Store,
                 auth: Authenticator, ssl_context: ssl.SSLContext | None, logins: Any = None) -> None:  # fmt: skip
        self.reader, self.writer = reader, writer
        self.settings, self.store, self.auth = settings, store, auth
        self.ssl_context, self.logins = ssl_context, logins
        peer = writer.get_extra_info("peername")
        self.host = str(peer[0]) if peer else ""
        self.tls = writer.get_extra_info("sslcontext") is not None
        self.account: Account | None = None
        self.limits = settings.sieve

    # -- output --------------------------------------------------------------------------
    async def send(self, *lines: bytes) -> None:
        self.writer.write(b"".join(line + b"\r\n" for line in lines))
        await self.writer.drain()

    async def ok(self, text: str = "", code: str = "") -> None:
        await self.send(b"OK" + (f" ({code})".encode() if code else b"") + (b" " + quote(text) if text else b""))

    async def no(self, text: str, code: str = "") -> None:
        await self.send(b"NO" + (f" ({code})".encode() if code else b"") + b" " + quote(text))

    def capabilities(self) -> list[bytes]:
        caps = [b'"IMPLEMENTATION" "mailserver"', b'"SIEVE" ' + quote(" ".join(EXTENSIONS)),
                b'"MAXREDIRECTS" "%d"' % MAX_REDIRECTS, b'"VERSION" "1.0"']  # fmt: skip
        if self.account is None:
            if self.tls or self._plaintext_ok():
                caps.insert(1, b'"SASL" "PLAIN"')
            else:
                caps.insert(1, b'"SASL" ""')
            if not self.tls and self.ssl_context is not None:
                caps.append(b'"STARTTLS"')
        else:
            caps.append(b'"OWNER" ' + quote(self.account.address))
        return caps

    def _plaintext_ok(self) -> bool:
        return self.settings.tls.allow_plaintext_auth_on_loopback and _loopback(self.host)

    # -- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        await self.send(*self.capabilities(), b'OK "mailserver ManageSieve ready"')
        max_literal = self.limits.max_script_size + 1024
        while True:
            try:
                words = await asyncio.wait_for(read_command(self.reader, max_literal), timeout=30 * 60)
            except asyncio.TimeoutError:
                await self.send(b'BYE "idle too long"')
                return
            except TooBig as e:
                await self.send(b"BYE (QUOTA/MAXSIZE) " + quote(str(e)))
                return
            except (WireError, UnicodeDecodeError) as e:
                await self.send(b"BYE " + quote(f"protocol error: {e}"))
                return
            if words is None:
                return
            if not words or not isinstance(words[0], str):
                await self.no("empty command")
                continue
            verb = words[0].upper()
            handler = getattr(self, "cmd_" + verb.lower(), None) if verb.isalpha() else None
            needs_auth = verb not in ("CAPABILITY", "STARTTLS", "AUTHENTICATE", "LOGOUT", "NOOP")
            if handler is None:
                await self.no(f"unknown command {verb[:32]}")
            elif needs_auth and self.account is None:
                await self.no("authenticate first")
            elif needs_auth and not await self._still_allowed():
                await self.send(b'BYE (UNAVAILABLE) "the account may no longer log in"')
                return
            else:
                try:
                    if await handler(words[1:]) is False:
                        return
                except (WireError, UnicodeDecodeError, IndexError, ValueError) as e:
                    await self.no(f"bad arguments: {e}" if not isinstance(e, IndexError) else "missing argument")
                except StoreError as e:
                    log.warning("managesieve %s %s: store error %s %s", self.account.address if self.account else "-", verb, e.kind, e.detail)
                    await self.no("temporary failure, try again", "TRYLATER")

    async def _still_allowed(self) -> bool:
        """The account may still log in (not locked, revoked or deleted since, nor its password
        reset): checked at every command, as IMAP and POP3 sessions are (R-ACC-2, R-LIFE-1)."""
        now = await self.thread(self.store.accounts.get_account_by_id, self.account.id)
        return (now is not None and now.state in LOGIN_STATES
                and getattr(now, "password_changed_at", None) == getattr(self.account, "password_changed_at", None))

    async def thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    # -- commands before login -----------------------------------------------------------
    async def cmd_capability(self, args) -> None:
        await self.send(*self.capabilities(), b"OK")

    async def cmd_noop(self, args) -> None:
        await self.ok("NOOP", f'TAG {quote(args[0]).decode()}' if args and isinstance(args[0], str) else "")

    async def cmd_logout(self, args) -> bool:
        await self.ok("bye")
        return False

    async def cmd_starttls(self, args) -> None:
        if self.tls or self.ssl_context is None:
            await self.no("TLS already active or not available")
            return
        await self.ok("begin TLS negotiation")
        await self.writer.start_tls(self.ssl_context)
        self.tls = True
        await self.send(*self.capabilities(), b"OK")  # RFC 5804 2.2: capabilities again after TLS

    async def cmd_authenticate(self, args) -> None:
        if self.account is not None:
            await self.no("already authenticated")
            return
        if str(args[0]).upper() != "PLAIN":
            await self.no("only PLAIN is supported")
            return
        if not (self.tls or self._plaintext_ok()):
            await self.no("use STARTTLS first", "ENCRYPT-NEEDED")
            return
        response = args[1] if len(args) > 1 else None
        if response is None:
            await self.send(b'""')
            more = await read_command(self.reader, MAX_CREDENTIALS)
            if not more or more[0] == "*":
                await self.no("authentication cancelled")
                return
            response = more[0]
        raw = response if isinstance(response, bytes) else response.encode()
        try:
            authz, user, password = base64.b64decode(raw, validate=True).decode("utf-8").split("\0")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            await self.no("malformed PLAIN response")
            return
        loop = asyncio.get_running_loop()

        async def check():
            account = await loop.run_in_executor(None, self.auth.authenticate, user, password)
            if account is None:
                return None, "credentials"
            if authz and authz.lower() != account.address.lower():
                return None, "authorization"
            return account, ""

        if self.logins is not None:
            attempt = await self.logins.attempt(PROTOCOL, self.host, user, check,
                                                thread=lambda fn, *a: loop.run_in_executor(None, fn, *a), sleep=asyncio.sleep)  # fmt: skip
            if attempt.refused:
                await self.no("too many failed logins, try later", "TRYLATER")
                return
            account = attempt.account
        else:
            account, _why = await check()
        if account is None:
            await self.no("authentication failed")
            return
        self.account = account
        await self.ok("logged in")

    # -- script commands -----------------------------------------------------------------
    def _script_text(self, data: Any) -> str | None:
        raw = data if isinstance(data, bytes) else str(data).encode("utf-8")
        return raw.decode("utf-8")  # UnicodeDecodeError → NO

    async def _check(self, text: str) -> bool:
        try:
            compile_script(text)
        except ScriptError as e:
            await self.no(str(e))
            return False
        return True

    async def cmd_havespace(self, args) -> None:
        name, size = _name(args[0]), int(args[1])
        if size > self.limits.max_script_size:
            await self.no(f"a script may have {self.limits.max_script_size} octets", "QUOTA/MAXSIZE")
            return
        scripts = await self.thread(self.store.sieve.list_scripts, self.account.id)
        if name not in {s.name for s in scripts} and len(scripts) >= self.limits.max_scripts:
            await self.no(f"at most {self.limits.max_scripts} scripts", "QUOTA/MAXSCRIPTS")
            return
        await self.ok()

    async def cmd_putscript(self, args) -> None:
        name, data = _name(args[0]), args[1]
        if len(data if isinstance(data, bytes) else data.encode()) > self.limits.max_script_size:
            await self.no(f"a script may have {self.limits.max_script_size} octets", "QUOTA/MAXSIZE")
            return
        text = self._script_text(data)
        if not await self._check(text):
            return
        scripts = await self.thread(self.store.sieve.list_scripts, self.account.id)
        if name not in {s.name for s in scripts} and len(scripts) >= self.limits.max_scripts:
            await self.no(f"at most {self.limits.max_scripts} scripts", "QUOTA/MAXSCRIPTS")
            return
        await self.thread(self.store.sieve.put_script, self.account.id, name, text)
        log.info("managesieve %s PUTSCRIPT %r (%d octets)", self.account.address, name, len(text.encode()))
        await self.ok()

    async def cmd_checkscript(self, args) -> None:
        if await self._check(self._script_text(args[0])):
            await self.ok()

    async def cmd_listscripts(self, args) -> None:
        scripts = await self.thread(self.store.sieve.list_scripts, self.account.id)
        await self.send(*[quote(s.name) + (b" ACTIVE" if s.active else b"") for s in scripts], b"OK")

    async def cmd_getscript(self, args) -> None:
        text = await self.thread(self.store.sieve.get_script, self.account.id, _name(args[0]))
        if text is None:
            await self.no("no such script", "NONEXISTENT")
            return
        data = text.encode("utf-8")
        await self.send(b"{%d}\r\n" % len(data) + data, b"OK")

    async def cmd_setactive(self, args) -> None:
        name = None if args[0] == "" else _name(args[0])
        try:
            await self.thread(self.store.sieve.set_active, self.account.id, name)
        except NotFound:
            await self.no("no such script", "NONEXISTENT")
            return
        log.info("managesieve %s SETACTIVE %r", self.account.address, name)
        await self.ok()

    async def cmd_deletescript(self, args) -> None:
        try:
            await self.thread(self.store.sieve.delete_script, self.account.id, _name(args[0]))
        except NotFound:
            await self.no("no such script", "NONEXISTENT")
        except Invalid:
            await self.no("the script is active", "ACTIVE")
        else:
            await self.ok()

    async def cmd_renamescript(self, args) -> None:
        try:
            await self.thread(self.store.sieve.rename_script, self.account.id, _name(args[0]), _name(args[1]))
        except NotFound:
            await self.no("no such script", "NONEXISTENT")
        except Exists:
            await self.no("a script of that name exists", "ALREADYEXISTS")
        else:
            await self.ok()


MAX_CREDENTIALS = 4096  # octets of a SASL response
