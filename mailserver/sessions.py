"""Ends IMAP and POP3 sessions whose login no longer holds.

A password is checked once, at login; IMAP clients then stay connected for days (IDLE) and POP3
sessions for minutes. Without a re-check, an account revoked or locked by the operator
(``mailserver account revoke``, R-LIFE-*), deleted, or whose password was reset (``account
passwd``, ``unit handover`` R-BOX-3: the old head must lose the unit mailbox) would keep reading
mail until the client disconnects on its own. The operator's command runs in another process,
possibly on another host (PostgreSQL), so the server looks for itself: every
``limits.session_recheck`` seconds one query reads the accounts of every logged-in session and
the sessions whose login failed the check are ended (IMAP ``* BYE``, RFC 3501 §7.1.5; POP3 has no
unsolicited reply, so the connection is closed, and RFC 1939 says a session that does not reach
UPDATE deletes nothing).

Delegated rights are asked again at every command (imap/access.py); a session idling in a unit
mailbox sends none, so the same pass also asks ``rights_for`` for each session that has another
account's folder selected, and ends it once the read right is gone (an undelegation, a handover):
otherwise it would go on hearing of that mailbox's new mail.
"""

from __future__ import annotations

import logging
from typing import Protocol

from twisted.internet import task
from twisted.internet.threads import deferToThread

from mailserver.policy.logins import Login
from storage.api import Account, Store
from storage.api import why_lapsed

log = logging.getLogger(__name__)


class Ending(Protocol):
    def end_session(self, reason: str) -> None: ...


def _shared(session) -> tuple[int, int] | None:
    """(reader, owner) when the session has another account's folder selected, else None."""
    reading = getattr(session, "shared_selection", None)
    return reading() if reading is not None else None


def why_invalid(login: Login, now: Account | None) -> str | None:
    """Why ``login`` no longer holds, or None if it still does (storage.api.why_lapsed)."""
    return why_lapsed(now, login.password_changed_at, check_password=login.check_password)


class SessionGuard:
    """The logged-in sessions of this process and the periodic check of their accounts."""

    def __init__(self, reactor, store: Store, interval: float, *, rights_for=None) -> None:
        """``rights_for(account_id, mailbox_account_id) -> set of storage.api.Right`` (the
        organisation model), or None when there are no shared mailboxes."""
        self.reactor = reactor
        self.store = store
        self.interval = interval
        self.rights_for = rights_for
        self._sessions: dict[Ending, tuple[Login, ...]] = {}
        self._per_account: dict[tuple[int, str], int] = {}  # (account id, protocol) → sessions
        self._loop: task.LoopingCall | None = None
        self._checking = False

    def start(self) -> None:
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = self.reactor
        self._loop.start(self.interval, now=False).addErrback(lambda f: log.error("session check stopped: %s", f))

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def register(self, session: Ending, *logins: Login) -> None:
        self.unregister(session)
        self._sessions[session] = logins
        key = (logins[0].account_id, getattr(session, "protocol_name", "other"))
        self._per_account[key] = self._per_account.get(key, 0) + 1

    def unregister(self, session: Ending) -> None:
        logins = self._sessions.pop(session, None)
        if logins is not None:
            self._forget(session, logins)

    def _forget(self, session: Ending, logins: tuple[Login, ...]) -> None:
        key = (logins[0].account_id, getattr(session, "protocol_name", "other"))
        count = self._per_account.get(key, 0) - 1
        if count > 0:
            self._per_account[key] = count
        else:
            self._per_account.pop(key, None)

    def count_for(self, account_id: int, protocol: str) -> int:
        """Sessions of ``protocol`` (``session.protocol_name``) logged in as ``account_id``."""
        return self._per_account.get((account_id, protocol), 0)

    def count_by_protocol(self) -> dict[str, int]:
        """Logged-in sessions by ``session.protocol_name`` (imap, pop3), for /metrics."""
        counts: dict[str, int] = {}
        for session in self._sessions:
            name = getattr(session, "protocol_name", "other")
            counts[name] = counts.get(name, 0) + 1
        return counts

    def check(self):
        """One pass: a thread reads the accounts of every registered session; the reactor ends
        the sessions that fail. A pass still running when the next is due is not doubled."""
        if self._checking or not self._sessions:
            return None
        # Only the sessions registered now are judged on what the thread reads: one that logs in
        # meanwhile has accounts the read did not ask for (it would look deleted).
        asked = dict(self._sessions)
        ids = {login.account_id for logins in asked.values() for login in logins}
        shared = {s: pair for s in asked if (pair := _shared(s)) is not None} if self.rights_for else {}
        self._checking = True
        d = deferToThread(self._read, sorted(ids), set(shared.values()))
        d.addCallback(lambda found: self._judge(found[0], found[1], shared, asked))
        d.addErrback(lambda f: log.error("session check failed: %s", f.getErrorMessage()))
        d.addBoth(self._done)
        return d

    def _done(self, _result) -> None:
        self._checking = False

    def _read(self, ids: list[int], pairs: set[tuple[int, int]]):
        """In a thread: the accounts, and which (reader, owner) pairs may still read."""
        from storage.api import Right

        readable = {pair for pair in pairs if Right.READ in self.rights_for(*pair)}
        return self.store.accounts.get_accounts_by_ids(ids), readable

    def _judge(self, accounts: dict[int, Account], readable=frozenset(), shared=None, asked=None) -> None:
        shared = shared or {}
        asked = self._sessions if asked is None else asked
        for session, logins in list(asked.items()):
            if self._sessions.get(session) is not logins:
                continue  # logged out (or in again) since the read
            reasons = (why_invalid(login, accounts.get(login.account_id)) for login in logins)
            reason = next((r for r in reasons if r is not None), None)
            if reason is None and session in shared and shared[session] not in readable:
                # still the same selection as when asked: the answer is about it
                reason = "access to the shared mailbox withdrawn" if _shared(session) == shared[session] else None
            if reason is not None:
                log.info("ending session of account %d: %s", logins[0].account_id, reason)
                self.unregister(session)
                try:
                    session.end_session(reason)
                except Exception:  # noqa: BLE001 (the other sessions must still be checked)
                    log.exception("could not end a session")
