"""A state-tracking IMAP workload: N clients on one mailbox doing random SELECT, FETCH, STORE
(keywords), EXPUNGE, APPEND, COPY, MOVE, IDLE and NOOP, every untagged reply checked against a
model of the mailbox as that session was told it (RFC 3501 §2.3.1.2, §5.5, §7.2.6, §7.4.1).

Used by tests/test_imap_stress.py (our server, 0 errors wanted) and bench/imap_stress.py (the
same workload as a benchmark, against ours and a private Dovecot). Server-agnostic: plain
sockets, LOGIN, the mailboxes INBOX and Other.

What is checked, per session: no keyword in a FETCH that the mailbox's FLAGS did not list;
EXISTS never decreases (only EXPUNGE removes messages); an EXPUNGE or FETCH names an existing
sequence number; the UID a FETCH gives for a number agrees with what the session knew and keeps
UIDs ascending; and across sessions: no message is \\Recent in two sessions. After the run,
every session's flags for the messages it knows, brought up to date by a NOOP, equal the
mailbox's (no flag change lost).
"""

from __future__ import annotations

import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field

MSG = (b"From: stress@example.gov.vn\r\nTo: stress@example.gov.vn\r\nSubject: stress %d\r\n"
       b"Message-ID: <stress-%d@example.gov.vn>\r\n\r\nbody %d\r\n")
KEYWORDS = ["$Work", "$Todo", "Urgent", "$Label1", "Later"]
SYSTEM = {"\\answered", "\\flagged", "\\deleted", "\\seen", "\\draft", "\\recent"}
_FETCH = re.compile(rb"^\* (\d+) FETCH \((.*)\)$")
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")


DEBUG = False


class ProtocolError(Exception):
    pass


@dataclass
class Shared:
    """What the sessions share: the errors found, and which session saw which UID \\Recent."""

    errors: list[str] = field(default_factory=list)
    recent_in: dict[int, set[int]] = field(default_factory=dict)
    ops: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, who: int, text: str) -> None:
        with self.lock:
            self.errors.append(f"client {who}: {text}")

    def saw_recent(self, who: int, uid: int) -> None:
        with self.lock:
            holders = self.recent_in.setdefault(uid, set())
            holders.add(who)
            if len(holders) > 1:
                self.errors.append(f"UID {uid} is \\Recent in sessions {sorted(holders)}")


class Client:
    def __init__(self, who: int, host: str, port: int, user: str, password: str, shared: Shared, seed: int) -> None:
        self.who, self.shared = who, shared
        self.rng = random.Random(seed)
        self.sock = socket.create_connection((host, port), timeout=30)
        self.buf = b""
        self.tag = 0
        self.uids: list[int | None] = []  # MSN - 1 → UID (None: told EXISTS, UID not yet known)
        self.flags: dict[int, frozenset[str]] = {}  # UID → flags as told to this session
        self.mailbox_flags: set[str] = set()  # lower case
        self.selected = False
        self.history: list[bytes] = []
        self._line()  # greeting
        self.command(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))

    # -- wire ----------------------------------------------------------------------------------
    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProtocolError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def command(self, text: bytes, literal: bytes | None = None) -> bytes:
        """Send a command, check every untagged reply; the tagged status line."""
        self.tag += 1
        tag = b"c%d" % self.tag
        if literal is not None:
            self.sock.sendall(tag + b" " + text + b" {%d}\r\n" % len(literal))
            while not (line := self._line()).startswith(b"+"):
                self._untagged(line)
            self.sock.sendall(literal + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text + b"\r\n")
        if DEBUG:
            self.history.append(b">> " + tag + b" " + text)
        while True:
            line = self._line()
            if line.startswith(tag + b" "):
                status = line[len(tag) + 1:]
                if not status.startswith(b"OK"):
                    self.shared.error(self.who, f"{text[:60]!r} answered {status[:80]!r}")
                with self.shared.lock:
                    self.shared.ops += 1
                return status
            self._untagged(line)

    def idle(self, seconds: float) -> None:
        self.tag += 1
        tag = b"c%d" % self.tag
        self.sock.sendall(tag + b" IDLE\r\n")
        while not (line := self._line()).startswith(b"+"):
            self._untagged(line)
        end = time.monotonic() + seconds
        self.sock.settimeout(0.05)
        try:
            while time.monotonic() < end:
                try:
                    self._untagged(self._line())
                except TimeoutError:
                    pass
        finally:
            self.sock.settimeout(30)
        self.sock.sendall(b"DONE\r\n")
        while not (line := self._line()).startswith(tag + b" "):
            self._untagged(line)
        with self.shared.lock:
            self.shared.ops += 1

    # -- the model -------------------------------------------------------------------------------
    def _untagged(self, line: bytes) -> None:
        if DEBUG:
            self.history.append(line)
        err = lambda text: self.shared.error(self.who, f"{text} in {line[:120]!r}")  # noqa: E731
        parts = line.split(b" ", 3)
        if len(parts) >= 3 and parts[0] == b"*" and parts[1].isdigit():
            n, kind = int(parts[1]), parts[2].upper()
            if kind == b"EXISTS":
                if n < len(self.uids):
                    err(f"EXISTS went down from {len(self.uids)} without EXPUNGE")
                    del self.uids[n:]
                self.uids.extend([None] * (n - len(self.uids)))
            elif kind == b"EXPUNGE":
                if not 1 <= n <= len(self.uids):
                    err(f"EXPUNGE of {n} with {len(self.uids)} messages")
                    return
                uid = self.uids.pop(n - 1)
                self.flags.pop(uid, None)
            elif kind == b"FETCH":
                self._fetch(n, line, err)
        elif line.startswith(b"* FLAGS ("):
            self.mailbox_flags = {f.lower() for f in line[9:-1].decode().split()}
        elif line.startswith(b"* OK [CLOSED]"):  # RFC 7162 §3.2.11: what follows is the new mailbox's
            self.uids, self.flags = [], {}

    def _fetch(self, n: int, line: bytes, err) -> None:
        if not 1 <= n <= len(self.uids):
            err(f"FETCH of {n} with {len(self.uids)} messages")
            return
        m = _FETCH.match(line)
        uid_m, flags_m = _UID.search(m.group(2)) if m else None, _FLAGS.search(m.group(2)) if m else None
        uid = int(uid_m.group(1)) if uid_m else self.uids[n - 1]
        if uid_m:
            known = self.uids[n - 1]
            if known is not None and known != uid:
                err(f"message {n} is UID {known} here, the FETCH says {uid}")
                return
            before = next((u for u in reversed(self.uids[: n - 1]) if u is not None), 0)
            after = next((u for u in self.uids[n:] if u is not None), None)
            if uid <= before or (after is not None and uid >= after):
                err(f"UID {uid} at {n} is out of order ({before} before, {after} after)")
                return
            self.uids[n - 1] = uid
        if flags_m and uid is not None:
            flags = frozenset(flags_m.group(1).decode().split())
            for f in flags:
                if f.lower() not in SYSTEM and f.lower() not in self.mailbox_flags:
                    err(f"keyword {f} not in the mailbox's FLAGS")
            if "\\Recent" in flags:
                self.shared.saw_recent(self.who, uid)
            self.flags[uid] = frozenset(f for f in flags if f != "\\Recent")

    # -- the workload ----------------------------------------------------------------------------
    def select(self) -> None:
        if not self.selected:
            self.uids, self.flags = [], {}
        self.command(b"SELECT INBOX")
        self.selected = True
        self.learn()

    def learn(self) -> None:
        """UIDs and flags of the messages this session does not know yet."""
        if any(u is None for u in self.uids):
            first = next(i for i, u in enumerate(self.uids) if u is None) + 1
            self.command(b"FETCH %d:* (UID FLAGS)" % first)

    def known(self) -> list[int]:
        return [u for u in self.uids if u is not None]

    def step(self, counter) -> None:
        rng = self.rng
        op = rng.choices(
            ["fetch", "store", "unstore", "expunge", "append", "copy", "move", "idle", "noop", "select"],
            [20, 20, 10, 5, 10, 5, 4, 6, 10, 2],
        )[0]
        uids = self.known()
        pick = lambda: rng.choice(uids)  # noqa: E731
        if op == "select":
            self.select()
        elif op == "fetch":
            self.command(b"FETCH 1:* (UID FLAGS)" if self.uids else b"NOOP")
        elif op in ("store", "unstore") and uids:
            flag = rng.choice(KEYWORDS + ["\\Flagged", "\\Seen", "\\Answered"])
            sign = b"+" if op == "store" else b"-"
            silent = b".SILENT" if rng.random() < 0.2 else b""
            uid = pick()
            self.command(b"UID STORE %d %sFLAGS%s (%s)" % (uid, sign, silent, flag.encode()))
            if silent and uid in self.flags:  # what the client knows it asked for
                known = set(self.flags[uid])
                (known.add if sign == b"+" else known.discard)(flag)
                self.flags[uid] = frozenset(known)
        elif op == "expunge" and uids:
            self.command(b"UID STORE %d +FLAGS.SILENT (\\Deleted)" % pick())
            self.command(b"EXPUNGE")
        elif op == "append":
            n = next(counter)
            kw = rng.choice(KEYWORDS + [""]).encode()
            self.command(b"APPEND INBOX (%s)" % kw, MSG % (n, n, n))
        elif op == "copy" and uids:
            self.command(b"UID COPY %d %s" % (pick(), rng.choice([b"INBOX", b"Other"])))
        elif op == "move" and uids:
            self.command(b"UID MOVE %d Other" % pick())
        elif op == "idle":
            self.idle(rng.uniform(0.05, 0.3))
        else:
            self.command(b"NOOP")
        self.learn()

    def close(self) -> None:
        try:
            self.command(b"LOGOUT")
        except (OSError, ProtocolError):
            pass
        self.sock.close()


def prepare(host: str, port: int, user: str, password: str, messages: int = 20) -> None:
    """INBOX with ``messages`` messages and an empty Other (for COPY and MOVE)."""
    shared = Shared()
    c = Client(-1, host, port, user, password, shared, 0)
    c.sock.sendall(b"p1 CREATE Other\r\n")
    while not c._line().startswith(b"p1 "):
        pass
    for i in range(messages):
        c.command(b"APPEND INBOX ()", MSG % (i, i, i))
    c.close()


def run(host: str, port: int, user: str, password: str, *, clients: int = 10, seconds: float = 5.0,
        seed: int = 1) -> Shared:
    """The workload for ``seconds``; then the final check. The Shared record of errors and ops."""
    shared = Shared()
    counter = iter(range(1_000_000, 10_000_000))
    lock = threading.Lock()

    def next_n(_it=counter):
        with lock:
            return next(_it)

    class _Counter:
        def __next__(self):
            return next_n()

    sessions = [Client(i, host, port, user, password, shared, seed * 1000 + i) for i in range(clients)]
    for c in sessions:
        c.select()
    end = time.monotonic() + seconds
    failures: list[BaseException] = []

    def work(c: Client) -> None:
        try:
            while time.monotonic() < end:
                c.step(_Counter())
        except BaseException as e:  # noqa: BLE001 (reported as an error of the run)
            failures.append(e)
            shared.error(c.who, f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(c,)) for c in sessions]
    begin = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shared.elapsed = time.monotonic() - begin
    ops = shared.ops
    if not failures:
        final_check(sessions, shared)
    shared.ops = ops
    for c in sessions:
        c.close()
    return shared


def final_check(sessions: list[Client], shared: Shared) -> None:
    """Every session, after a NOOP, holds the mailbox's flags for every message it knows."""
    truth_client = sessions[0]
    for c in sessions:
        c.command(b"NOOP")
    truth_client.command(b"FETCH 1:* (UID FLAGS)")  # brings sessions[0] fully up to date first
    truth = dict(truth_client.flags)
    for c in sessions:
        c.command(b"NOOP")
        c.learn()
        for uid in c.known():
            if uid in truth and c.flags.get(uid) is not None and c.flags[uid] != truth[uid]:
                shared.error(c.who, f"UID {uid} has {sorted(c.flags[uid])} here, {sorted(truth[uid])} in the mailbox")
                if DEBUG:
                    print(shared.errors[-1], *[h for h in c.history if re.search(rb"UID %d\b" % uid, h) or h.startswith(b">>")][-25:], sep="\n  ")
        if c.known() != truth_client.known():
            extra, missing = set(c.known()) - set(truth), set(truth) - set(c.known())
            shared.error(c.who, f"UIDs differ from the mailbox's: {sorted(extra)} extra, {sorted(missing)} missing")
