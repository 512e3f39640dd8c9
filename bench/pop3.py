"""POP3 benchmark: a maildrop of N messages read by poplib, on the plain and the TLS listener.

    .venv/bin/python bench/pop3.py [--messages 1000] [--size 9500] [--runs 3]

Loads the maildrop through the Store API in-process (as bench/imap.py does), starts the real
server (``mailserver serve``) and, per listener (``pop3``, then ``pop3s``), times with the
standard library's poplib: UIDL of the whole maildrop, TOP n 0 of every message, and RETR of every
message, one command after the other as a downloading client does. Prints per command the median
wall time of a run over the whole maildrop, the messages per second it makes, and the server's CPU
per message (the figure to compare on a loaded machine: wall time there includes waiting for a
core). Each run is a new session that ends with RSET + QUIT, so nothing is deleted and every run
reads the same maildrop.
"""

from __future__ import annotations

import argparse
import poplib
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.imap import ADDRESS, PASSWORD, cpu_seconds, load, wait_idle  # noqa: E402  (same maildrop as the IMAP bench)
from tests.conftest import Server  # noqa: E402  (the same harness the tests use)


def connect(srv: Server, tls: bool) -> poplib.POP3:
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the server's self-signed certificate
        p = poplib.POP3_SSL(srv.host, srv.port("pop3s"), context=ctx, timeout=120)
    else:
        p = poplib.POP3(srv.host, srv.port("pop3"), timeout=120)
    p.user(ADDRESS)
    p.pass_(PASSWORD)
    return p


def run_once(srv: Server, tls: bool, command: str, count: int) -> float:
    """Seconds for one pass of ``command`` over the maildrop (login not counted)."""
    p = connect(srv, tls)
    try:
        started = time.perf_counter()
        if command == "UIDL":
            listed = p.uidl()[1]
            assert len(listed) == count, len(listed)
        elif command == "TOP n 0":
            for n in range(1, count + 1):
                p.top(n, 0)
        elif command == "RETR":
            for n in range(1, count + 1):
                p.retr(n)
        elapsed = time.perf_counter() - started
        p.rset()
    finally:
        p.quit()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--size", type=int, default=9500, help="bytes of text per message body (default ~10 KB messages)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pop3-bench-") as tmp:
        srv = Server(Path(tmp), "sqlite")
        print(f"loading {args.messages} messages ...", flush=True)
        secs = load(srv, args.messages, args.size)
        print(f"loaded in {secs:.1f} s")
        srv.start()
        wait_idle(srv.proc.pid)
        try:
            pid = srv.proc.pid
            print(f"{'listener':<8} {'command':<8} {'median s':>9} {'msg/s':>8} {'ms/msg':>7} {'srv CPU ms/msg':>14}")
            for listener, tls in (("pop3", False), ("pop3s", True)):
                for command in ("UIDL", "TOP n 0", "RETR"):
                    cpu = cpu_seconds(pid)
                    times = [run_once(srv, tls, command, args.messages) for _ in range(args.runs)]
                    cpu_ms = (cpu_seconds(pid) - cpu) * 1000 / (args.runs * args.messages)  # login included
                    med = statistics.median(times)
                    print(f"{listener:<8} {command:<8} {med:>9.3f} {args.messages / med:>8.0f} "
                          f"{med * 1000 / args.messages:>7.2f} {cpu_ms:>14.3f}", flush=True)
            errors = [ln for ln in srv.log().splitlines() if "Error" in ln or "error" in ln]
            if errors:
                print("server log errors:", *errors[-10:], sep="\n  ")
        finally:
            srv.destroy()


if __name__ == "__main__":
    main()
