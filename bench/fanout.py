"""Benchmark (R-BOX-4): one message to a group of N members, each member with an IMAP
client in IDLE; time until every client has seen it, and the extra disk used.

    .venv/bin/python bench/fanout.py                      # 1,000 members, 100 KB, SQLite, over SMTP
    .venv/bin/python bench/fanout.py --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/fanout.py --direct             # the store alone, no server, no clients

Over SMTP it needs the SMTP side to expand group recipients at RCPT (``Organisation.
expand_accounts``); without that hook the group's own INBOX receives the message, no member's
client sees it, and the report says so. ``--direct`` times what the store does for that hook:
``put_blob`` + ``deliver`` to the expanded members, and when the listeners hear of it;
``--explicit-rcpts`` sends over SMTP with one RCPT per member instead of the group address: the
same single delivery, measurable end to end before the hook exists.

Set-up (not timed): a fresh data directory, N accounts and the group created in one transaction
each, a server started with cheap argon2 parameters (so 1,000 logins do not dominate set-up),
N raw-socket IMAP connections (asyncio) logged in, INBOX selected, IDLE running. Timed: from the
SMTP connection to the last client's ``* n EXISTS``. Disk: bytes of every file under the data
directory before and after (SQLite: after a WAL checkpoint too), or pg_database_size.
Postfix + Dovecot on this machine: 1.04 s and 2.3 MB for 1,000 members.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOMAIN = "example.gov.vn"
PASSWORD = "Bench!pass123"
SERVICES = ("smtp", "imap")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message(size: int) -> bytes:
    head = (f"From: Văn thư <vanthu@{DOMAIN}>\r\nTo: Toàn cơ quan <all@{DOMAIN}>\r\n"
            f"Subject: =?utf-8?b?VGjDtG5nIGLDoW8=?=\r\nMessage-ID: <{uuid.uuid4().hex}@{DOMAIN}>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n").encode()
    line = "Thông báo lịch họp giao ban tuần của cơ quan, đề nghị các đơn vị tham dự đầy đủ.\r\n".encode()
    body = line * ((size - len(head)) // len(line) + 1)
    return head + body[: size - len(head)]


def disk_bytes(data_dir: Path, url: str) -> int:
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url) as conn:
            db = conn.execute("select pg_database_size(current_database())").fetchone()[0]
        return db + sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file() and "blobs" in p.parts)
    return sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())


def checkpoint(data_dir: Path) -> None:
    db = data_dir / "mail.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def setup(args, data_dir: Path):
    """Config, schema, N members and the group; returns (settings, config path)."""
    import yaml

    from config.loader import load_settings
    from mailserver.app import migrate, open_store
    from mailserver.accounts.auth import hash_password
    from mailserver.maintenance.tls import ensure_certificate
    from storage.api import AccountState
    from storage.api import NewPerson, SendPolicy

    url = args.database_url or f"sqlite:///{data_dir / 'mail.db'}"
    ports = {name: free_port() for name in SERVICES}
    config = {
        "profile": "none", "hostname": "mail.example.gov.vn", "domains": [DOMAIN], "data_dir": str(data_dir),
        "database": {"url": url},
        "listeners": {name: {"address": "127.0.0.1", "port": port} for name, port in ports.items()},
        "tls": {"cert": str(data_dir / "tls" / "cert.pem"), "key": str(data_dir / "tls" / "key.pem")},
        "passwords": {"time_cost": 1, "memory_cost": 1024, "cache_seconds": 0},
        "limits": {"max_recipients": 10000},
    }
    path = data_dir / "mailserver.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    settings = load_settings(path)
    ensure_certificate(settings.tls.cert, settings.tls.key, settings.hostname)
    migrate(settings)
    store = open_store(settings)
    try:
        store.accounts.add_domain(DOMAIN)
        org = store.org
        pw_hash = hash_password(settings.passwords, PASSWORD)
        # active: no forced password change in the way of IMAP LOGIN (R-PASS-1)
        people = [NewPerson(f"m{i:05d}@{DOMAIN}", f"Thành viên {i}", pw_hash, None, state=AccountState.ACTIVE)
                  for i in range(args.members)]
        accounts = org.create_people(people)
        group = org.add_group(f"all@{DOMAIN}", "Toàn cơ quan", send_policy=SendPolicy.ANYONE)
        org.add_members(group.account.id, [a.id for a in accounts])
    finally:
        store.close()
    return settings, path, ports, url


class IdleClient:
    def __init__(self, index: int) -> None:
        self.user = f"m{index:05d}@{DOMAIN}"
        self.seen_at: float | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _until(self, tag: bytes) -> None:
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError(f"{self.user}: connection closed")
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{self.user}: {line!r}")
                return

    async def start(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        await self.reader.readline()
        self.writer.write(f'a LOGIN "{self.user}" "{PASSWORD}"\r\n'.encode())
        await self._until(b"a")
        self.writer.write(b"b SELECT INBOX\r\n")
        await self._until(b"b")
        self.writer.write(b"c IDLE\r\n")
        while not (await self.reader.readline()).startswith(b"+"):
            pass

    async def wait_exists(self) -> None:
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError(f"{self.user}: closed during IDLE")
            if line.endswith(b"EXISTS\r\n"):
                self.seen_at = time.perf_counter()
                return

    async def close(self) -> None:
        try:
            self.writer.write(b"DONE\r\nz LOGOUT\r\n")
            await self.writer.drain()
        except OSError:
            pass
        self.writer.close()


async def send_smtp(port: int, data: bytes, rcpts: list[str]) -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> str:
        while True:
            line = (await reader.readline()).decode()
            if line[3:4] != "-":
                return line.strip()

    await reply()
    rcpt = ""
    commands = ["EHLO bench.example.gov.vn", f"MAIL FROM:<vanthu@{DOMAIN}>", *(f"RCPT TO:<{r}>" for r in rcpts), "DATA"]
    for cmd in commands:
        writer.write(cmd.encode() + b"\r\n")
        answer = await reply()
        if cmd.startswith("RCPT"):
            rcpt = answer
        if not answer.startswith(("2", "3")):
            writer.close()
            return rcpt, answer
    writer.write(data.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
    final = await reply()
    writer.write(b"QUIT\r\n")
    writer.close()
    return rcpt, final


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Profiler:
    """``py-spy record`` attached to the server for the timed part only (``--py-spy FILE``)."""

    def __init__(self, pid: int, out: str | None, extra: str) -> None:
        self.proc = None
        if out:
            cmd = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid), *(() if "--rate" in extra else ("--rate", "250")),
                   "--format", "raw" if out.endswith(".txt") else "flamegraph", "-o", out, *extra.split()]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.5)  # let it attach before the clock starts

    def stop(self) -> None:
        if self.proc is not None:
            import signal

            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)


async def over_smtp(args, ports, server_pid: int) -> dict:
    clients = [IdleClient(i) for i in range(args.members)]
    gate = asyncio.Semaphore(args.concurrency)

    async def start(c: IdleClient) -> None:
        async with gate:
            await c.start(ports["imap"])

    t0 = time.perf_counter()
    await asyncio.gather(*(start(c) for c in clients))
    idle_setup = time.perf_counter() - t0
    waiters = [asyncio.ensure_future(c.wait_exists()) for c in clients]
    data = message(args.size)
    profiler = Profiler(server_pid, args.py_spy, args.py_spy_args)
    cpu0 = cpu_seconds(server_pid)
    begin = time.perf_counter()
    rcpts = [c.user for c in clients] if args.explicit_rcpts else [f"all@{DOMAIN}"]
    rcpt, final = await send_smtp(ports["smtp"], data, rcpts)
    accepted = time.perf_counter() - begin
    _done, pending = await asyncio.wait(waiters, timeout=args.timeout)
    cpu = cpu_seconds(server_pid) - cpu0
    profiler.stop()
    for waiter in pending:
        waiter.cancel()
    seen = [c.seen_at for c in clients if c.seen_at is not None]
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return {"idle_setup_s": idle_setup, "rcpt": rcpt, "data": final, "smtp_250_s": accepted,
            "seen": len(seen), "all_seen_s": (max(seen) - begin) if len(seen) == args.members else None,
            "first_seen_s": (min(seen) - begin) if seen else None,
            "median_seen_s": (sorted(seen)[len(seen) // 2] - begin) if seen else None,
            "server_cpu_s": cpu}


def direct(args, settings) -> dict:
    """The store's part of the fan-out: expand, put_blob, deliver, listeners told."""
    import threading

    from mailserver.app import open_store
    from storage.api import DeliveryTarget

    store = open_store(settings)
    told = threading.Event()
    counted: set[int] = set()

    def listener(changes):
        counted.update(c.account_id for c in changes)
        if len(counted) >= args.members:
            told.set()

    store.subscribe(listener)
    try:
        org = store.org
        data = message(args.size)
        begin = time.perf_counter()
        ids = org.expand_recipients(f"all@{DOMAIN}")
        expanded = time.perf_counter() - begin
        blob = store.messages.put_blob(data)
        outcomes = store.messages.deliver(blob, [DeliveryTarget(i) for i in ids])
        committed = time.perf_counter() - begin
        told.wait(30)
        notified = time.perf_counter() - begin
    finally:
        store.close()
    return {"expand_s": expanded, "committed_s": committed, "listeners_told_s": notified,
            "delivered": sum(o.ok for o in outcomes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--size", type=int, default=100 * 1024, help="message size in bytes")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite in the data directory)")
    parser.add_argument("--direct", action="store_true", help="time the store alone (no server, no clients)")
    parser.add_argument("--explicit-rcpts", action="store_true",
                        help="RCPT every member's address instead of the group (the same delivery, without the hook)")
    parser.add_argument("--concurrency", type=int, default=50, help="IMAP logins in flight during set-up")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--py-spy", metavar="FILE", help="profile the server during the timed part (.svg or .txt)")
    parser.add_argument("--py-spy-args", default="", help='extra py-spy record options, e.g. "--gil --idle"')
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.members + 256)), hard))

    pg_name = None
    if args.database_url:
        import psycopg

        pg_name = f"fanout_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        args.database_url = args.database_url.rsplit("/", 1)[0] + "/" + pg_name
    data_dir = Path(tempfile.mkdtemp(prefix="fanout-"))
    proc = None
    try:
        t0 = time.perf_counter()
        settings, config, ports, url = setup(args, data_dir)
        print(f"set-up: {args.members} members in {time.perf_counter() - t0:.1f} s ({url.split(':')[0]})")
        checkpoint(data_dir)
        before = disk_bytes(data_dir, url)
        if args.direct:
            result = direct(args, settings)
        else:
            log = open(data_dir / "server.log", "wb")
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            proc = subprocess.Popen([sys.executable, "-m", "mailserver", "--config", str(config), "serve"],
                                    stdout=log, stderr=subprocess.STDOUT, env=env)
            deadline = time.monotonic() + 180
            for port in ports.values():
                while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        tail = (data_dir / "server.log").read_text(errors="replace")[-3000:]
                        raise SystemExit(f"server did not start:\n{tail}")
                    time.sleep(0.1)
            result = asyncio.run(over_smtp(args, ports, proc.pid))
        after = disk_bytes(data_dir, url)
        checkpoint(data_dir)
        settled = disk_bytes(data_dir, url)
        for key, value in result.items():
            print(f"{key:>18}: {value:.3f}" if isinstance(value, float) else f"{key:>18}: {value}")
        print(f"{'extra disk':>18}: {after - before:,} bytes ({settled - before:,} after WAL checkpoint)")
        if not args.direct and result["seen"] < args.members and not args.explicit_rcpts:
            print("NOTE: not every client saw the message: the SMTP side does not expand group "
                  "recipients yet (storage.api.Organisation.expand_accounts at RCPT).")
        print("Postfix + Dovecot reference: 1.040 s, 2.3 MB; target < 0.25 s and less disk")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if pg_name:
            import psycopg

            base = args.database_url.rsplit("/", 1)[0] + "/postgres"
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        if not args.keep:
            import shutil

            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"data kept in {data_dir}")


if __name__ == "__main__":
    main()
