"""NOTIFY (RFC 5465): the command, and what a session with NOTIFY in effect tells its client
unasked, when no command is in progress (or while it IDLEs).

- The selected mailbox (SELECTED / SELECTED-DELAYED): EXISTS, RECENT, EXPUNGE (held back under
  SELECTED-DELAYED until a command that may report them), flag FETCHes (FlagChange), and for
  MessageNew with fetch attributes a FETCH of each new message.
- Other folders of the user (imap/notifyspec.py's filters): a STATUS (MESSAGES UIDNEXT
  UIDVALIDITY UNSEEN, and HIGHESTMODSEQ once CONDSTORE is on) when one of the folder's
  subscribed events happened (HIGHESTMODSEQ too with FlagChange); LIST for MailboxName (create, delete as \\NonExistent, rename
  with OLDNAME) and SubscriptionChange.

The ChangeHub (imap/notify.py) calls ``folder_changed`` for every commit to the account;
a NotifyState compares with what it last told (STATUS values, folder names and ids,
subscriptions), so a PostgreSQL notification and a local commit that both bring a change tell
it once. Output is written by one task at a time, with the connection held as if a command
were running, so that a command's responses never interleave with it.

A client that does not read its notifications (OVERFLOW_BYTES or more waiting to be sent) gets
``* OK [NOTIFICATIONOVERFLOW]`` once, and from then on the session acts as after NOTIFY NONE
(RFC 5465 §5.8): unread output, MessageNew's FETCHes above all, no longer piles up in memory.
"""

from __future__ import annotations

import bisect
import logging

from twisted.internet import defer
from twisted.internet.threads import deferToThread

from imap.fetch import Flow, FetchJob
from imap.notifyspec import (
    BADEVENT, FLAG_CHANGE, MAILBOX_NAME, MESSAGE_EVENTS, MESSAGE_NEW, SUBSCRIPTION_CHANGE, BadEvent, NotifySpec,
    parse_notify,
)
from imap.op.folders import status_line
from imap.op.selected import recent_settled
from imap.state import Session
from storage.api import FOLDER_LIST
from storage.errors import NotFound

log = logging.getLogger(__name__)
OK, NO = b"OK", b"NO"
#: bytes waiting to be sent to the client above which notifications stop (RFC 5465 §5.8)
OVERFLOW_BYTES = 1024 * 1024
OVERFLOW = b"OK [NOTIFICATIONOVERFLOW] Notifications stopped: the client does not read them"
STATUS_ITEMS = [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN"]


async def notify(s: Session, tag: bytes, rest):
    try:
        spec = parse_notify(rest, b"UTF8=ACCEPT" in s.enabled)
    except BadEvent:
        return NO, BADEVENT + b" Event not supported"
    if s.notify is not None:
        s.notify.stop()
    state = NotifyState(s, spec or NotifySpec())
    s.notify = state
    await state.start()
    return OK, b"NOTIFY completed"


class _Collect:
    """Stands in for the connection while a FETCH for MessageNew is rendered (imap/fetch.py)."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write_now(self, data: bytes) -> None:
        self.parts.append(data)


class NotifyState:
    def __init__(self, s: Session, spec: NotifySpec) -> None:
        self.s, self.spec = s, spec
        self.folders: dict[int, str] = {}  # the account's folders as last told: id → name
        self.subscribed: set[str] = set()
        self.status: dict[int, tuple[int, int, int, int, int]] = {}  # id → values last told
        self.dirty: set[int] = set()  # folders changed since
        self.list_dirty = False
        self.selected_dirty = False
        self.fetched_top = 0  # new messages above this UID are yet to get MessageNew's FETCH
        self.running: defer.Deferred | None = None
        self.again = False
        self.waiting = False  # work to do once the command in progress has ended
        self.stopped = False

    # -- life ------------------------------------------------------------------------------------
    async def start(self) -> None:
        s, spec = self.s, self.spec
        sv = s.selected
        if sv is not None:
            self.fetched_top = sv.uids[-1] if sv.uids else 0
        if not spec.watches_folders:
            return
        s.ctx.hub.watch_account(s.account.id, s)  # before the snapshot: nothing falls between
        store, account_id = s.ctx.store, s.account.id

        def load():
            folders = store.folders.list_folders(account_id)
            subscribed = set(store.folders.subscriptions(account_id))
            statuses = []
            for f in folders:
                if spec.events_for(f.name, subscribed) & MESSAGE_EVENTS:
                    try:
                        statuses.append(store.folders.folder_status(f.id))
                    except NotFound:
                        pass
            return folders, subscribed, statuses

        folders, self.subscribed, statuses = await deferToThread(load)
        self.folders = {f.id: f.name for f in folders}
        lines = []
        for st in statuses:
            self.status[st.folder.id] = _values(st)
            if spec.status and (s.selected is None or s.selected.folder_id != st.folder.id):
                lines.append(self._status_line(st))
        s.write_lines(lines)

    def stop(self) -> None:
        self.stopped = True
        if self.spec.watches_folders and self.s.account is not None:
            self.s.ctx.hub.unwatch_account(self.s.account.id, self.s)

    def selected_now(self, sv) -> None:
        """A new SELECT/EXAMINE: MessageNew's FETCH is for messages arriving from now on."""
        self.fetched_top = sv.uids[-1] if sv.uids else 0

    # -- events ----------------------------------------------------------------------------------
    def folder_changed(self, folder_id: int) -> None:
        """From the ChangeHub, on the reactor: a commit touched this account's folder (or list)."""
        if folder_id == FOLDER_LIST:  # names change what the filters match, even without MailboxName
            self.list_dirty = True
            self.kick()
            return
        sv = self.s.selected
        if sv is not None and sv.folder_id == folder_id:
            return  # the selected mailbox is told by EXISTS/EXPUNGE/FETCH, never by STATUS
        self.dirty.add(folder_id)
        self.kick()

    def selected_changed(self) -> None:
        """The selected view has news (applied, not yet told)."""
        if self.spec.selected:
            self.selected_dirty = True
            self.kick()

    def command_done(self) -> None:
        """The command in progress ended: what waited for it goes out now."""
        sv = self.s.selected
        if self.spec.fetch and sv is not None and sv.uids and sv.uids[-1] > self.fetched_top:
            self.selected_dirty = True  # told EXISTS in a command's response: the FETCH is due
            self.waiting = True
        if self.waiting:
            self.waiting = False
            self.kick()

    def kick(self) -> None:
        s = self.s
        if self.stopped or s.closed:
            return
        if self.running is not None:
            self.again = True
            return
        if s.conn.in_command and not s.idling:
            self.waiting = True
            return
        d = defer.ensureDeferred(self._run())
        if not d.called:  # done already when it had nothing to wait for
            self.running = d

    async def settled(self) -> None:
        """Wait for output on its way (IDLE's end: its tagged OK comes after it)."""
        while self.running is not None:
            await self.running

    def overflowing(self) -> bool:
        """The client left OVERFLOW_BYTES or more unread: tell it once and stop notifying."""
        if unsent_bytes(self.s.conn.transport) < OVERFLOW_BYTES:
            return False
        self.s.untagged(OVERFLOW)
        self.stop()
        self.s.notify = NotifyState(self.s, NotifySpec())  # as after NOTIFY NONE
        return True

    async def _run(self) -> None:
        conn = self.s.conn
        owned = not conn.in_command
        if owned:
            conn.hold()
        try:
            while not (self.stopped or self.s.closed):
                if self.overflowing():
                    break
                self.again = False
                await self._tell_selected()
                await self._tell_folders()
                if not self.again:
                    break
        except Exception:  # noqa: BLE001 (notifications are best effort; the session goes on)
            log.exception("imap: NOTIFY output failed")
        finally:
            self.running = None
            if owned:
                conn.release()

    # -- the selected mailbox --------------------------------------------------------------------
    async def _tell_selected(self) -> None:
        s, spec = self.s, self.spec
        sv = s.selected
        if not self.selected_dirty or sv is None or not spec.selected:
            return
        self.selected_dirty = False
        await recent_settled(s)
        if s.selected is not sv:
            return
        s.write_lines(sv.flush(
            allow_expunge=not spec.delayed, with_modseq=s.condstore, vanished=b"QRESYNC" in s.enabled,
            with_flags=FLAG_CHANGE in spec.selected,
        ))
        if spec.fetch and MESSAGE_NEW in spec.selected and sv.uids and sv.uids[-1] > self.fetched_top:
            new = list(sv.uids[bisect.bisect_right(sv.uids, self.fetched_top):])
            self.fetched_top = sv.uids[-1]
            collect = _Collect()
            job = FetchJob(collect, s.ctx.store, s.ctx.reactor, Flow())
            tail = await deferToThread(job.run, sv.uids[:], set(sv.recent), sv.folder_id, new, list(spec.fetch))
            if s.selected is sv and not self.overflowing():
                s.conn.write_now(b"".join(collect.parts) + tail)

    # -- other folders ---------------------------------------------------------------------------
    async def _tell_folders(self) -> None:
        s = self.s
        if self.list_dirty:
            self.list_dirty = False
            store, account_id = s.ctx.store, s.account.id
            folders, subscribed = await deferToThread(
                lambda: (store.folders.list_folders(account_id), set(store.folders.subscriptions(account_id)))
            )
            s.write_lines(self._list_lines({f.id: f.name for f in folders}, subscribed))
        if not self.dirty:
            return
        sv = s.selected
        ids = [i for i in self.dirty if i in self.folders and (sv is None or sv.folder_id != i)]
        self.dirty = set()
        ids = [i for i in ids if self.spec.events_for(self.folders[i], self.subscribed) & MESSAGE_EVENTS]
        if not ids:
            return
        statuses = await deferToThread(_statuses, s.ctx.store, ids)
        lines = []
        for st in statuses:
            events = self.spec.events_for(self.folders.get(st.folder.id, st.folder.name), self.subscribed)
            old, new = self.status.get(st.folder.id), _values(st)
            if old == new:
                continue
            self.status[st.folder.id] = new
            happened = {FLAG_CHANGE} if old is not None and old[:3] == new[:3] else {MESSAGE_NEW}
            if events & happened:
                lines.append(self._status_line(st))
        s.write_lines(lines)

    def _status_line(self, st) -> bytes:
        # HIGHESTMODSEQ is how a flag change shows in STATUS: there with FlagChange (as Dovecot
        # does) or CONDSTORE.
        items = STATUS_ITEMS + [b"HIGHESTMODSEQ"] if self.s.condstore or self.spec.flag_events else STATUS_ITEMS
        return status_line(self.s, st, items, self.folders.get(st.folder.id, st.folder.name))

    def _list_lines(self, folders: dict[int, str], subscribed: set[str]) -> list[bytes]:
        """MailboxName and SubscriptionChange (RFC 5465 §5.4, §5.5) as LIST responses, from the
        difference between what was last told and the account's folders now."""
        s, spec = self.s, self.spec
        old, old_subscribed = self.folders, self.subscribed
        self.folders, self.subscribed = folders, subscribed
        parents = {n.rsplit("/", 1)[0] for n in folders.values() if "/" in n}

        def wants(event: str, *names: str) -> bool:
            return any(event in spec.events_for(n, subscribed | old_subscribed) for n in names)

        def line(attrs: list[str], name: str, extra: bytes = b"") -> bytes:
            return b'* LIST (%s) "/" %s%s' % (" ".join(attrs).encode(), s.wire_name(name), extra)

        def children(name: str) -> list[str]:
            return ["\\HasChildren" if name in parents else "\\HasNoChildren"]

        lines = []
        for fid, name in old.items():
            if fid not in folders and wants(MAILBOX_NAME, name):
                lines.append(line(["\\NonExistent"], name))
        for fid, name in folders.items():
            before = old.get(fid)
            if before is None and wants(MAILBOX_NAME, name):
                lines.append(line(children(name), name))
            elif before is not None and before != name and wants(MAILBOX_NAME, name, before):
                lines.append(line(children(name), name, b' ("OLDNAME" (%s))' % s.wire_name(before)))
        for name in sorted(subscribed ^ old_subscribed):
            if wants(SUBSCRIPTION_CHANGE, name):
                lines.append(line(["\\Subscribed"] if name in subscribed else [], name))
        return lines


def unsent_bytes(transport) -> int:
    """Bytes written to a connection and not yet sent (COMPRESS: after deflating; TLS: the
    ciphertext queued on the TCP transport under it)."""
    t = transport
    for _ in range(3):  # under imap.compress.DeflateTransport, or a TLSMemoryBIOProtocol (imaps)
        if t is None or hasattr(t, "dataBuffer"):
            break
        t = getattr(t, "_transport", None) or getattr(t, "transport", None)
    data = getattr(t, "dataBuffer", b"")
    return len(data) - getattr(t, "offset", 0) + getattr(t, "_tempDataLen", 0)


def _values(st) -> tuple[int, int, int, int, int]:
    return st.messages, st.folder.uidnext, st.folder.uidvalidity, st.unseen, st.folder.highestmodseq


def _statuses(store, ids) -> list:
    out = []
    for folder_id in ids:
        try:
            out.append(store.folders.folder_status(folder_id))
        except NotFound:  # deleted meanwhile: MailboxName tells that
            pass
    return out
