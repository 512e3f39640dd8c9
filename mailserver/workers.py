"""``mailserver serve --workers N``: N server processes on one PostgreSQL store, under a parent.

The parent binds every listener once, then forks the workers, which all accept on the same
sockets (the kernel hands each connection to one of them; a worker that dies leaves the queued
connections to the others, where SO_REUSEPORT would have reset them). Each worker is a whole
server (app.serve): its own event loop, store connections and outbound queue worker. What they
share goes through the database: folder changes by LISTEN/NOTIFY (storage/pgnotify.py), queue
claims by ``FOR UPDATE SKIP LOCKED``, the POP3 maildrop lock by advisory locks
(storage/sql/locks.py). Worker 0 alone runs the daily jobs (retention, lifecycle).

The parent opens no database connection and starts no thread, so forking is safe. It restarts
a worker that dies (at once, then with a growing pause while it keeps dying young; it gives up
and stops everything when a worker never gets going), tells the replacement the dead one's
process id (its queue claims are taken back at once), and on SIGTERM/SIGINT stops the workers
and waits for them.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from config.settings import Settings
from storage.engine import is_sqlite

log = logging.getLogger("mailserver.workers")

BACKLOG = 4096  # the kernel caps it at net.core.somaxconn
YOUNG = 10.0  # a worker that dies sooner than this after its start counts as failing to start
GIVE_UP_AFTER = 5  # failed starts in a row of one worker slot
MAX_PAUSE = 30.0
_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class Refused(RuntimeError):
    """Several workers were asked for where they cannot work."""


@dataclass(frozen=True)
class Worker:
    """What one worker process is told by its parent."""

    index: int  # 0 … N-1; a replacement keeps the index of the worker it replaces
    sockets: dict[tuple[str, int], socket.socket] = field(default_factory=dict)  # (address, port) → bound
    replaces: tuple[int, ...] = ()  # process ids of dead workers whose queue claims to release

    @property
    def runs_daily_jobs(self) -> bool:
        return self.index == 0


def check_workers(settings: Settings, count: int) -> None:
    """SQLite serves one process: several would each run a writer on one file."""
    if count < 1:
        raise Refused("--workers must be 1 or more")
    if count > 1 and is_sqlite(settings.database.url):
        raise Refused(
            f"--workers {count} needs PostgreSQL: SQLite serves one server process "
            "(set database.url to postgresql://…, see docs/operations.md)"
        )


def bind_listeners(settings: Settings) -> dict[tuple[str, int], socket.socket]:
    """A listening socket for every configured listener, to be shared by the workers."""
    sockets: dict[tuple[str, int], socket.socket] = {}
    try:
        for _name, listener in settings.listeners:
            if listener is None:
                continue
            family = socket.getaddrinfo(listener.address, listener.port, type=socket.SOCK_STREAM,
                                        flags=socket.AI_PASSIVE)[0][0]
            sock = socket.create_server((listener.address, listener.port), family=family, backlog=BACKLOG)
            sock.setblocking(False)
            sockets[(listener.address, listener.port)] = sock
    except Exception:
        for sock in sockets.values():
            sock.close()
        raise
    return sockets


class Supervisor:
    """Forks the workers, restarts the ones that die, stops them all on SIGTERM/SIGINT."""

    def __init__(self, count: int, sockets: dict, run: Callable[[Worker], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.count = count
        self.sockets = sockets
        self.run = run
        self.clock = clock
        self.children: dict[int, int] = {}  # pid → index
        self.started: dict[int, float] = {}  # index → when its current process started
        self.failures: dict[int, int] = {}  # index → failed starts in a row
        self.stopping = False
        self.exit_code = 0

    def supervise(self) -> int:
        for sig in _SIGNALS:
            signal.signal(sig, self._stop)
        signal.signal(signal.SIGHUP, self._hup)
        for index in range(self.count):
            self._spawn(index, ())
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index = self.children.pop(pid, None)
            if index is None or self.stopping:
                continue
            self._replace(index, pid, status)
        for sock in self.sockets.values():
            sock.close()
        log.info("all workers stopped")
        return self.exit_code

    def _replace(self, index: int, pid: int, status: int) -> None:
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"status {os.waitstatus_to_exitcode(status)}"
        young = self.clock() - self.started.get(index, 0.0) < YOUNG
        self.failures[index] = self.failures.get(index, 0) + 1 if young else 0
        if self.failures[index] >= GIVE_UP_AFTER:
            log.error("worker %d (pid %d) ended with %s, failing to start %d times: stopping", index, pid, how,
                      self.failures[index])
            self.exit_code = 1
            self._stop()
            return
        pause = min(MAX_PAUSE, 2.0 ** (self.failures[index] - 1)) if self.failures[index] else 0.0
        log.error("worker %d (pid %d) ended with %s; starting it again%s", index, pid, how,
                  f" in {pause:.0f} s" if pause else "")
        deadline = self.clock() + pause
        while not self.stopping and self.clock() < deadline:
            time.sleep(0.1)
        if not self.stopping:
            self._spawn(index, (pid,))

    def _spawn(self, index: int, replaces: tuple[int, ...]) -> None:
        # Signals wait until the child is in the table, so that a stop reaches every worker.
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                self._child(Worker(index, self.sockets, replaces))
            self.children[pid] = index
            self.started[index] = self.clock()
            log.info("worker %d started (pid %d)", index, pid)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)

    def _child(self, worker: Worker) -> None:
        code = 1
        try:
            for sig in _SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until serve() handles it (log reopen, TLS reload)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            self.run(worker)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - the parent sees the status; the log says why
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001 - exiting anyway
                    pass
            os._exit(code)

    def _hup(self, *_args) -> None:
        """SIGHUP: reopen this process's log file and pass the signal on to every worker."""
        from mailserver.logsetup import reopen

        reopen()
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:
                pass

    def _stop(self, *_args) -> None:
        if not self.stopping:
            log.info("stopping %d workers", len(self.children))
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def serve_workers(settings: Settings, count: int, run: Callable[[Worker], None]) -> int:
    """Bind, fork ``count`` workers running ``run``, supervise them; returns the exit status."""
    sockets = bind_listeners(settings)
    print(f"mailserver {settings.hostname}: {count} worker processes, parent pid {os.getpid()}", flush=True)
    return Supervisor(count, sockets, run).supervise()
