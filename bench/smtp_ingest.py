"""SMTP ingest benchmark: N messages of ~10 KB over C concurrent connections.

Starts its own server (``python -m mailserver --config X serve`` on a temporary data dir, free
loopback ports, accounts made with the CLI), sends with aiosmtplib to random local recipients and
prints, for the same run:
  - our server: messages/s accepted (last 250) and messages/s readable over IMAP (STATUS polled
    until every message is counted), end to end from the first connection;
  - a bare aiosmtpd server whose handler discards each message: the front end's ceiling.

    .venv/bin/python bench/smtp_ingest.py [-n 5000] [-c 20] [--accounts 20] [--size 10240] [--rounds 3]
        [--database-url postgresql://postgres@127.0.0.1:5432/test]   # a new database there, dropped after
        [--filters none|on|both]
        [--workers 2]   # serve --workers N (PostgreSQL): CPU and memory are summed over the processes

``--filters on`` puts a private spamd and clamd (tests/filter_daemons.py: local rules, the test
signature database) in the path of every message; ``both`` alternates rounds without and with
them and prints the difference of our server's CPU per message (spamd's and clamd's own CPU is in
their processes, not counted). It includes what the slower rate costs (a commit and loop wake-ups
per message instead of shared ones); bench/filter_clients.py measures the clients alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import imaplib
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import aiosmtplib
import yaml
from fanout import Profiler  # bench/ is on sys.path when a benchmark runs as a script

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "example.gov.vn"
PASSWORD = "Bench-pass-2026!"
LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s")

BARE_SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from aiosmtpd.smtp import SMTP

    class Discard:
        async def handle_DATA(self, server, session, envelope):
            return "250 2.0.0 OK"

    async def main(port):
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Discard(), hostname="bare.test", data_size_limit=40 * 1024 * 1024,
                         enable_SMTPUTF8=True, loop=loop), "127.0.0.1", port)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main(int(sys.argv[1])))
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"port {port} did not open")


def make_message(i: int, rcpt: str, size: int, rng: random.Random) -> bytes:
    words = ["công", "văn", "số", "kính", "gửi", "đơn", "vị", "báo", "cáo", "quý", "tỉnh", "Lâm", "Đồng", "thư"]
    head = (
        f"From: Sender {i} <sender{i}@other.gov.vn>\r\nTo: <{rcpt}>\r\nSubject: Bench {i} công văn\r\n"
        f"Message-ID: <bench-{i}@other.gov.vn>\r\nDate: Mon, 23 Nov 2026 15:00:00 +0700\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode()
    body = bytearray()
    while len(head) + len(body) < size:
        body += (" ".join(rng.choice(words) for _ in range(12)) + "\r\n").encode()
    return head + bytes(body)


async def blast(port: int, jobs: list[tuple[str, bytes]], concurrency: int) -> tuple[float, float, int]:
    """Send every (recipient, message); returns (start, time of the last 250, refused count)."""
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    refused = 0
    last = 0.0

    async def worker() -> None:
        nonlocal refused, last
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=120) as client:
            while not queue.empty():
                rcpt, message = queue.get_nowait()
                errors, _ = await client.sendmail("bench@other.gov.vn", [rcpt], message)
                if errors:
                    refused += 1
                last = time.perf_counter()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return start, last, refused


def poll_imap(port: int, accounts: list[str], expected: int, done: dict) -> None:
    """Log in to every account and poll STATUS INBOX (MESSAGES) until ``expected`` are counted;
    what went wrong, if anything, is kept in ``done["error"]`` for the report."""
    try:
        _poll_imap(port, accounts, expected, done)
    except Exception as e:  # noqa: BLE001 - reported with the figures
        done["error"] = f"{type(e).__name__}: {e}"


def _poll_imap(port: int, accounts: list[str], expected: int, done: dict) -> None:
    conns = []
    for address in accounts:
        c = imaplib.IMAP4("127.0.0.1", port)
        c.login(address, PASSWORD)
        conns.append(c)
    while True:
        total = 0
        for c in conns:
            typ, data = c.status("INBOX", "(MESSAGES)")
            total += int(data[0].split(b"MESSAGES ")[1].rstrip(b")"))
        if total >= expected:
            done["t"] = time.perf_counter()
            done["n"] = total
            break
        time.sleep(0.05)
    for c in conns:
        c.logout()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its worker processes) so far: a figure that
    holds on a loaded machine."""
    total = 0.0
    for one in family(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def family(pid: int) -> list[int]:
    """The process and its children (``serve --workers``: the parent and its workers)."""
    children = []
    with contextlib.suppress(OSError):
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [pid, *children]


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of a process (tid -> user + system; -1 -> system of all)."""
    out = {-1: 0.0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            out[-1] += int(fields[12]) / os.sysconf("SC_CLK_TCK")
    return out


def by_thread(pid: int, before: dict[int, float], after: dict[int, float], n: int) -> str:
    """Where the server's CPU went during the blast, per message: the event loop's thread, the
    busiest other thread (the store writer) and all the rest (workers)."""
    spent = {tid: t - before.get(tid, 0.0) for tid, t in after.items()}
    system = spent.pop(-1)
    loop = spent.pop(pid, 0.0)
    busiest = max(spent.values(), default=0.0)
    rest = sum(spent.values()) - busiest
    return f"event loop {loop / n * 1000:.2f} ms, busiest other thread {busiest / n * 1000:.2f} ms, other threads {rest / n * 1000:.2f} ms (of all: in the kernel {system / n * 1000:.2f} ms)"


def rss_peak_kib(pid: int) -> int | None:
    """Peak RSS, summed over the worker processes when there are several."""
    total = None
    for one in family(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total = (total or 0) + int(line.split()[1])
    return total


def start_our_server(
    data: Path, database_url: str | None = None, filters: dict | None = None, workers: int = 1
) -> tuple[subprocess.Popen, dict[str, int], Path]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "mailserver"]
    subprocess.run([*cli, "--config", str(data / "mailserver.yaml"), "init", "--data-dir", str(data),
                    "--domain", DOMAIN], check=True, env=env, capture_output=True)  # fmt: skip
    config_path = data / "mailserver.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    ports = {name: free_port() for name in LISTENERS}
    config["listeners"] = {name: {"address": "127.0.0.1", "port": port} for name, port in ports.items()}
    # This machine has no network: SPF/DKIM look-ups are answered from the configuration (as on
    # an isolated agency network) instead of waiting on a resolver that cannot answer.
    config["dns"] = {"static_only": True}
    if database_url:
        config["database"] = {**(config.get("database") or {}), "url": database_url}
    if filters:
        config["filters"] = filters
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    if database_url:
        subprocess.run([*cli, "--config", str(config_path), "db", "upgrade"], check=True, env=env, capture_output=True)
    log = open(data / "server.log", "wb")
    serve = ["serve"] + (["--workers", str(workers)] if workers > 1 else [])
    proc = subprocess.Popen([*cli, "--config", str(config_path), *serve], stdout=log, stderr=subprocess.STDOUT, env=env)
    wait_port(ports["smtp"], proc)
    wait_port(ports["imap"], proc)
    deadline = time.monotonic() + 60  # the parent's sockets answer before its workers serve
    while (data / "server.log").read_text(errors="replace").count(" serving ") < workers:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{workers} workers did not start")
        time.sleep(0.1)
    return proc, ports, config_path


def add_accounts(config_path: Path, n: int) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    addresses = [f"bench{i:03d}@{DOMAIN}" for i in range(n)]
    for address in addresses:
        subprocess.run([sys.executable, "-m", "mailserver", "--config", str(config_path), "account", "add",
                        f"Bench {address}", "--address", address, "--password", PASSWORD, "--active"],
                       check=True, env=env, capture_output=True)  # fmt: skip
    return addresses


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000, help="messages (default 5000)")
    parser.add_argument("-c", type=int, default=20, help="concurrent connections (default 20)")
    parser.add_argument("--accounts", type=int, default=20, help="local recipients (default 20)")
    parser.add_argument("--size", type=int, default=10 * 1024, help="message size in bytes (default 10240)")
    parser.add_argument("--database-url", help="PostgreSQL server URL: the run creates a database there and drops it")
    parser.add_argument("--workers", type=int, default=1, help="server processes (serve --workers; more than 1 needs PostgreSQL)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole measurement; medians are printed (default 1)")
    parser.add_argument("--filters", choices=("none", "on", "both"), default="none",
                        help="spamd and clamd in the path: none, on, or alternating rounds (default none)")
    parser.add_argument("--py-spy", metavar="FILE", help="profile our server while it ingests (.svg, or .txt for raw stacks)")
    parser.add_argument("--py-spy-args", default="", help='extra py-spy record options, e.g. "--gil --rate 500"')
    args = parser.parse_args()
    rng = random.Random(2026)
    run(args, rng, args.database_url)


@contextlib.contextmanager
def pg_database(server_url: str | None):
    """A new, empty PostgreSQL database for one run (None: SQLite in the data directory)."""
    if not server_url:
        yield None
        return
    import psycopg

    name = f"ingest_{os.getpid()}_{time.time_ns()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bare_rate(jobs: list[tuple[str, bytes]], concurrency: int) -> tuple[float, float]:
    """(messages/s, CPU seconds per message) of a bare aiosmtpd server discarding ``jobs``."""
    port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)], stdout=subprocess.PIPE)
    try:
        wait_port(port, bare)
        cpu0 = cpu_seconds(bare.pid)
        start, last, _refused = asyncio.run(blast(port, jobs, concurrency))
        return len(jobs) / (last - start), (cpu_seconds(bare.pid) - cpu0) / len(jobs)
    finally:
        stop(bare)


def one_round(args: argparse.Namespace, rng: random.Random, database_url: str | None, filters: dict | None = None) -> dict:
    """One run of our server, with the bare ceiling measured just before and just after it (the
    mean of the two: a shared machine's speed drifts within seconds)."""
    with tempfile.TemporaryDirectory(prefix="smtp-bench-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        proc, ports, config_path = start_our_server(data, database_url, filters, args.workers)
        try:
            accounts = add_accounts(config_path, args.accounts)
            jobs = [(r, make_message(i, r, args.size, rng)) for i, r in enumerate(rng.choice(accounts) for _ in range(args.n))]
            before = bare_rate(jobs, args.c)
            done: dict = {}
            profiler = Profiler(proc.pid, args.py_spy, args.py_spy_args)
            cpu0 = cpu_seconds(proc.pid)
            threads0 = thread_cpu(proc.pid)
            start_all = time.perf_counter()
            start, last, refused = asyncio.run(blast(ports["smtp"], jobs, args.c))
            threads = by_thread(proc.pid, threads0, thread_cpu(proc.pid), args.n) if args.workers == 1 else "n/a (several processes)"
            poller = threading.Thread(target=poll_imap, args=(ports["imap"], accounts, args.n - refused, done))
            poller.start()
            poller.join(timeout=600)
            profiler.stop()
            cpu = cpu_seconds(proc.pid) - cpu0  # includes serving the IMAP STATUS polls
            peak = rss_peak_kib(proc.pid)
        finally:
            stop(proc)
        after = bare_rate(jobs, args.c)
    return {
        "size": sum(len(m) for _, m in jobs) / len(jobs), "accepted": args.n / (last - start), "seconds": last - start,
        "refused": refused, "readable": done["n"] / (done["t"] - start_all) if "t" in done else None,
        "readable_s": done["t"] - start_all if "t" in done else None, "error": done.get("error", ""),
        "bare": (before[0] + after[0]) / 2, "bare_runs": (before[0], after[0]), "bare_cpu": (before[1] + after[1]) / 2,
        "cpu": cpu / args.n, "threads": threads, "peak": peak, "filters": bool(filters),
    }  # fmt: skip


@contextlib.contextmanager
def filter_daemons(mode: str):
    """The ``filters`` configuration of each round (None: none), with spamd and clamd running."""
    if mode == "none":
        yield lambda number: None
        return
    sys.path.insert(0, str(ROOT))
    from tests.filter_daemons import start_clamd, start_spamd

    spamd, clamd = start_spamd(children=4, unix=True), start_clamd()
    config = {"spamd": {"socket": spamd.socket}, "clamd": {"socket": clamd.socket}}  # on this host: Unix sockets
    try:
        yield lambda number: config if mode == "on" or number % 2 == 0 else None
    finally:
        spamd.stop()
        clamd.stop()


def run(args: argparse.Namespace, rng: random.Random, database_url: str | None) -> None:
    with filter_daemons(args.filters) as filters_for:
        rounds = _rounds(args, rng, database_url, filters_for)
    with_f = [r["cpu"] for r in rounds if r["filters"]]
    without = [r["cpu"] for r in rounds if not r["filters"]]
    if with_f and without:
        med = statistics.median
        print(f"server CPU per message, median: without filters {med(without) * 1000:.3f} ms, with spamd and clamd "
              f"{med(with_f) * 1000:.3f} ms (+{(med(with_f) - med(without)) * 1000:.3f} ms). At the rate spamd allows, "
              "commits and loop wake-ups are no longer shared between messages: bench/filter_clients.py gives the "
              "clients' own cost")  # fmt: skip


def _rounds(args: argparse.Namespace, rng: random.Random, database_url: str | None, filters_for) -> list[dict]:
    rounds = []
    for number in range(1, args.rounds + 1):
        with pg_database(database_url) as url:
            r = one_round(args, rng, url, filters_for(number))
        rounds.append(r)
        if number == 1:
            print(f"messages: {args.n} x {r['size'] / 1024:.1f} KiB over {args.c} connections, {args.accounts} recipients, "
                  f"{os.cpu_count()} CPUs, store {'PostgreSQL' if database_url else 'SQLite'}, {args.workers} server process(es)")  # fmt: skip
        print(f"round {number}:" + (" spamd and clamd in the path" if r["filters"] else ""))
        print(f"  ours     accepted (250 after durable commit): {r['accepted']:8.0f} msg/s  ({r['seconds']:.2f} s, refused {r['refused']})")
        if r["readable"] is not None:
            print(f"  ours     readable over IMAP (STATUS counted): {r['readable']:8.0f} msg/s  ({r['readable_s']:.2f} s)")
        else:
            print("  ours     readable over IMAP: not all messages counted within 600 s", r["error"])
        print(f"  ceiling  bare aiosmtpd, discarding handler:   {r['bare']:8.0f} msg/s  "
              f"(mean of {r['bare_runs'][0]:.0f} before and {r['bare_runs'][1]:.0f} after)")  # fmt: skip
        print(f"  ours / ceiling: {r['accepted'] / r['bare']:.0%}" + (f"; server peak RSS {r['peak'] / 1024:.0f} MiB" if r["peak"] else ""))
        print(f"  server CPU per message: ours {r['cpu'] * 1000:.2f} ms, bare aiosmtpd {r['bare_cpu'] * 1000:.2f} ms; "
              f"load average {os.getloadavg()[0]:.1f} (figures above are wall-clock, shared machine)")  # fmt: skip
        print(f"  our CPU per message while accepting, by thread: {r['threads']}")
    if len(rounds) > 1:
        med = statistics.median
        print(f"median of {len(rounds)} rounds: accepted {med(r['accepted'] for r in rounds):.0f} msg/s, readable "
              f"{med(r['readable'] or 0 for r in rounds):.0f} msg/s, ceiling {med(r['bare'] for r in rounds):.0f} msg/s, "
              f"ours / ceiling {med(r['accepted'] / r['bare'] for r in rounds):.0%} "
              f"(rounds: {', '.join(format(r['accepted'] / r['bare'], '.0%') for r in rounds)})")  # fmt: skip
    return rounds


if __name__ == "__main__":
    main()
