"""Several server processes on one PostgreSQL store: ``serve --workers N`` and independent
``serve`` processes (docs/operations.md, "PostgreSQL and several processes").

PostgreSQL only (they need ``MAILSERVER_TEST_DATABASE_URL``, which CI sets), except the check
that SQLite refuses several workers.
"""

from __future__ import annotations

import asyncio
import imaplib
import os
import poplib
import re
import signal
import smtplib
import ssl
import subprocess
import sys
import threading
import time

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import PG_URL, Server, free_port, wait_until
from tests.test_imap_extensions import Session

PASSWORD = "Workers-pass-2026"
pg_only = pytest.mark.skipif(not PG_URL, reason="several processes need PostgreSQL (MAILSERVER_TEST_DATABASE_URL)")


def _message(to: str, subject: str, sender: str = "tochuc@example.gov.vn") -> bytes:
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nNội dung.\r\n").encode()


def _deliver(server: Server, to: str, subject: str, timeout: float = 10) -> None:
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=timeout) as s:
        s.sendmail("tochuc@example.gov.vn", [to], _message(to, subject))


def _inbox_subjects(server: Server, address: str) -> list[str]:
    with imaplib.IMAP4(server.host, server.port("imap"), timeout=10) as imap:
        imap.login(address, PASSWORD)
        imap.select("INBOX", readonly=True)
        _, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])") if _count(imap) else (None, [])
        return [part[1].decode().split(":", 1)[1].strip() for part in data if isinstance(part, tuple)]


def _count(imap: imaplib.IMAP4) -> int:
    _, data = imap.status("INBOX", "(MESSAGES)")
    return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))


def _workers(server: Server) -> dict[int, int]:
    """index → pid of the live worker processes, from the parent's log."""
    found: dict[int, int] = {}
    for index, pid in re.findall(r"worker (\d+) started \(pid (\d+)\)", server.log()):
        found[int(index)] = int(pid)
    return found


@pytest.fixture
def pg_server(tmp_path_factory):
    made: list[Server] = []

    def make(extra: dict | None = None, *, workers: int = 1, sibling_of: Server | None = None) -> Server:
        root = tmp_path_factory.mktemp("workers")
        srv = sibling_of.sibling(root) if sibling_of else Server(root, "postgresql", extra)
        made.append(srv)
        srv.start(workers=workers)
        return srv

    yield make
    for srv in reversed(made):  # siblings first: the first one drops the schema
        srv.destroy()


def test_sqlite_refuses_several_workers(tmp_path):
    srv = Server(tmp_path, "sqlite")
    result = subprocess.run([sys.executable, "-m", "mailserver", "--config", str(srv.config_path), "serve",
                             "--workers", "2"], capture_output=True, text=True, env=srv.env, timeout=60)
    assert result.returncode == 1, result
    assert "needs PostgreSQL" in result.stderr


@pg_only
def test_idle_on_one_process_sees_mail_delivered_through_another_within_a_second(pg_server):
    a = pg_server()
    b = pg_server(sibling_of=a)
    address = f"idle@{a.domain}"
    a.add_account(address, PASSWORD, name="Chờ thư")
    s = Session(a)
    s.ok(f'LOGIN "{address}" "{PASSWORD}"')
    assert b"* 0 EXISTS" in s.ok("SELECT INBOX")
    s.sock.sendall(b"i IDLE\r\n")
    assert s._line().startswith(b"+ ")
    _deliver(b, address, "Qua tiến trình B")
    accepted = time.monotonic()
    s.sock.settimeout(5)
    line = s._line()
    elapsed = time.monotonic() - accepted
    assert line == b"* 1 EXISTS", line
    assert elapsed < 1.0, elapsed
    s.sock.sendall(b"DONE\r\n")
    s.close()


@pg_only
def test_concurrent_append_through_two_processes_allocates_uids_without_gap_or_duplicate(pg_server):
    a = pg_server()
    b = pg_server(sibling_of=a)
    address = f"append@{a.domain}"
    a.add_account(address, PASSWORD, name="Thêm thư")
    per_client, uids, errors = 15, [], []
    lock = threading.Lock()

    def client(server: Server, name: str) -> None:
        try:
            with imaplib.IMAP4(server.host, server.port("imap"), timeout=30) as imap:
                imap.login(address, PASSWORD)
                for i in range(per_client):
                    typ, data = imap.append("INBOX", None, None, _message(address, f"{name}-{i}"))
                    assert typ == "OK", data
                    uid = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
                    with lock:
                        uids.append(uid)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(srv, f"{tag}{n}")) for srv, tag in ((a, "a"), (b, "b"))
               for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    total = per_client * len(threads)
    assert sorted(uids) == list(range(1, total + 1))
    with imaplib.IMAP4(b.host, b.port("imap"), timeout=10) as imap:
        imap.login(address, PASSWORD)
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("SEARCH", "ALL")
        assert sorted(int(u) for u in data[0].split()) == list(range(1, total + 1))


@pg_only
def test_kill9_of_one_worker_loses_no_acknowledged_message_and_the_other_keeps_serving(pg_server):
    srv = pg_server(workers=2)
    address = f"kill@{srv.domain}"
    srv.add_account(address, PASSWORD, name="Không mất thư")
    workers = _workers(srv)
    assert sorted(workers) == [0, 1]
    acknowledged: list[str] = []
    stop = threading.Event()

    def sender(n: int) -> None:
        i = 0
        while not stop.is_set():
            subject = f"s{n}-{i}"
            i += 1
            try:
                _deliver(srv, address, subject, timeout=10)
            except (smtplib.SMTPException, OSError):
                continue  # not acknowledged: the sender tries again, as a real one would
            acknowledged.append(subject)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(acknowledged) >= 20, timeout=60, what="20 messages accepted")
        os.kill(workers[1], signal.SIGKILL)
        before = len(acknowledged)
        wait_until(lambda: len(acknowledged) >= before + 20, timeout=60, what="20 more accepted after the kill")
        wait_until(lambda: _workers(srv)[1] != workers[1], timeout=30, what="the dead worker replaced")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert srv.proc.poll() is None
    subjects = _inbox_subjects(srv, address)
    missing = set(acknowledged) - set(subjects)
    assert not missing, sorted(missing)
    assert f"worker 1 (pid {workers[1]}) ended with signal 9" in srv.log()


@pg_only
def test_queue_item_is_delivered_once_when_its_worker_is_killed_mid_delivery(pg_server):
    received: list[bytes] = []
    holding = threading.Event()  # a delivery is stalled at RCPT
    release = threading.Event()

    class Remote:
        async def handle_RCPT(self, server, session, envelope, address, options):
            if not release.is_set():
                holding.set()
                while not release.is_set():  # the worker is killed meanwhile; later attempts pass
                    await asyncio.sleep(0.01)
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"

        async def handle_DATA(self, server, session, envelope):
            received.append(envelope.original_content)
            return "250 2.0.0 queued"

    remote = Controller(Remote(), hostname="127.0.0.1", port=free_port())
    remote.start()
    try:
        port = remote.port
        srv = pg_server({"routes": {"other.gov.vn": f"127.0.0.1:{port}"}, "queue": {"poll": 1}}, workers=2)
        sender = f"gui@{srv.domain}"
        srv.add_account(sender, PASSWORD, name="Người gửi")
        with smtplib.SMTP(srv.host, srv.port("submission"), timeout=30) as client:
            client.starttls(context=ssl._create_unverified_context())
            client.login(sender, PASSWORD)
            client.sendmail(sender, ["ban@other.gov.vn"], _message("ban@other.gov.vn", "Một lần thôi", sender))
        assert holding.wait(60), srv.log()
        owner = wait_until(lambda: _claim_owner(srv), timeout=10, what="the claim recorded")
        pid = int(owner.rsplit(":", 1)[1])
        assert pid in _workers(srv).values()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: pid not in _workers(srv).values(), timeout=30, what="the worker replaced")
        release.set()
        wait_until(lambda: received, timeout=60, what="delivery by the replacement or the other worker")
        wait_until(lambda: _claim_owner(srv) is None and not _queued(srv), timeout=30, what="the queue empty")
        assert len(received) == 1
        assert "Subject: Một lần thôi".encode() in received[0]
        assert f"released 1 recipients claimed by dead worker {pid}" in srv.log()
    finally:
        release.set()
        remote.stop()


def _claim_owner(srv: Server) -> str | None:
    """Who holds a claim on the queue (``host:pid``), read from the database itself."""
    import psycopg

    url = srv.db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT locked_by FROM outbound_recipients WHERE locked_by IS NOT NULL").fetchone()
    return row[0] if row else None


def _queued(srv: Server) -> list:
    store = srv.open_store()
    try:
        return store.queue.list()
    finally:
        store.close()


@pg_only
def test_pop3_maildrop_lock_holds_across_processes_and_goes_with_a_killed_process(pg_server):
    a = pg_server()
    b = pg_server(sibling_of=a)
    address = f"pop@{a.domain}"
    a.add_account(address, PASSWORD, name="Bưu điện")
    first = poplib.POP3(a.host, a.port("pop3"), timeout=10)
    first.user(address)
    first.pass_(PASSWORD)
    second = poplib.POP3(b.host, b.port("pop3"), timeout=10)
    second.user(address)
    with pytest.raises(poplib.error_proto, match="IN-USE"):
        second.pass_(PASSWORD)
    second.quit()
    first.quit()  # released at QUIT: the other process may take it now
    again = poplib.POP3(b.host, b.port("pop3"), timeout=10)
    again.user(address)
    again.pass_(PASSWORD)  # held by b now; kill b and a must get it
    b.kill9()
    again.sock.close()

    def a_gets_it() -> bool:
        c = poplib.POP3(a.host, a.port("pop3"), timeout=10)
        try:
            c.user(address)
            c.pass_(PASSWORD)
            return True
        except poplib.error_proto:
            return False
        finally:
            c.sock.close()

    wait_until(a_gets_it, timeout=20, interval=0.2, what="the lock of the killed process released")


@pg_only
def test_sigterm_to_the_parent_stops_every_worker(pg_server):
    srv = pg_server(workers=2)
    pids = list(_workers(srv).values())
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=30) == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "all workers stopped" in srv.log()


def test_session_locks_exclude_other_processes_and_count_takes(store_url, tmp_path):
    """Two stores on one database stand for two processes (each has its lock connection)."""
    from storage.sql import SqlStore

    a = SqlStore(store_url, blob_dir=tmp_path / "a")
    b = SqlStore(store_url, blob_dir=tmp_path / "b")
    try:
        assert a.locks.try_lock("pop3-maildrop", 7)
        assert a.locks.try_lock("pop3-maildrop", 7)  # this process again (its sessions exclude each other above)
        assert b.locks.try_lock("pop3-maildrop", 8)  # another key
        if a.is_sqlite:
            return  # one process: nothing to exclude
        assert not b.locks.try_lock("pop3-maildrop", 7)
        assert b.locks.try_lock("other-name", 7)  # another name
        a.locks.unlock("pop3-maildrop", 7)
        assert not b.locks.try_lock("pop3-maildrop", 7)  # taken twice, released once
        a.locks.unlock("pop3-maildrop", 7)
        assert b.locks.try_lock("pop3-maildrop", 7)
        c = SqlStore(store_url, blob_dir=tmp_path / "c")
        try:
            assert c.locks.try_lock("pop3-maildrop", 9)
            assert not b.locks.try_lock("pop3-maildrop", 9)
        finally:
            c.close()  # a process that ends releases what it holds
        assert b.locks.try_lock("pop3-maildrop", 9)
    finally:
        a.close()
        b.close()


@pg_only
def test_deliveries_to_shared_recipients_through_two_processes_are_all_accepted(pg_server):
    """Batches of both processes lock the same accounts: never in a cycle (a deadlock that
    PostgreSQL breaks fails the jobs of one batch: 451 to its senders)."""
    a = pg_server()
    b = pg_server(sibling_of=a)
    names = [f"chung{i}@{a.domain}" for i in range(6)]
    for i, address in enumerate(names):
        a.add_account(address, PASSWORD, name=f"Chung {i}")
    failures: list = []

    def sender(server: Server, n: int) -> None:
        with smtplib.SMTP(server.host, server.port("smtp"), timeout=60) as s:
            for i in range(25):
                # every message to several of the same few accounts, in different orders
                rcpts = [names[(n + i + k * (1 + n % 2)) % len(names)] for k in range(3)]
                try:
                    s.sendmail("tochuc@example.gov.vn", rcpts, _message(rcpts[0], f"{n}-{i}"))
                except smtplib.SMTPException as exc:
                    failures.append(exc)

    threads = [threading.Thread(target=sender, args=(srv, n)) for n in range(6) for srv in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    assert "deadlock" not in (a.log() + b.log()).lower()
