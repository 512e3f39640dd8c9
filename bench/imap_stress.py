"""Benchmark: the state-tracking stress workload (tests/stress_workload.py) as operations per
second, on our server and on a private Dovecot 2.3 in the same run.

    .venv/bin/python bench/imap_stress.py [--clients 10] [--seconds 20] [--backend sqlite|postgresql]

Each server gets a fresh account with 20 messages in INBOX and an empty Other; then ``--clients``
connections run random SELECT/FETCH/STORE (keywords)/EXPUNGE/APPEND/COPY/MOVE/IDLE/NOOP for
``--seconds``, every reply checked against the session's model (errors are counted and the first
ones printed: the workload's model is RFC 3501's, so a count for Dovecot says where it differs).
An operation is one command answered (IDLE with its DONE counts one). Dovecot comes from the
Debian package dovecot-imapd, started as tests/imapdiff/dovecot.py does (its own directory,
port and sdbox store); without it only ours is measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fanout import Profiler  # noqa: E402
from tests import stress_workload  # noqa: E402
from tests.conftest import Server, free_port  # noqa: E402
from tests.imapdiff.dovecot import DOVECOT, Dovecot  # noqa: E402

PASSWORD = "Stress-bench-2024"


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, host: str, port: int, user: str, args, pid: int | None = None) -> float:
    stress_workload.prepare(host, port, user, PASSWORD)
    cpu0 = cpu_seconds(pid) if pid else None
    profiler = Profiler(pid, args.py_spy if pid else None, args.py_spy_args)
    try:
        shared = stress_workload.run(host, port, user, PASSWORD, clients=args.clients, seconds=args.seconds, seed=args.seed)
    finally:
        profiler.stop()
    rate = shared.ops / shared.elapsed
    cpu = f", server CPU {cpu_seconds(pid) - cpu0:.1f} s" if pid else ""
    print(f"{name:8s} {shared.ops:6d} ops in {shared.elapsed:.1f} s = {rate:7.0f} ops/s{cpu}, {len(shared.errors)} errors")
    for e in shared.errors[:5]:
        print(f"         {e}")
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument("--py-spy", metavar="FILE", help="profile our server during the run (.svg, or .txt for raw stacks)")
    ap.add_argument("--py-spy-args", default="", help='extra py-spy record options, e.g. "--gil --idle"')
    args = ap.parse_args()
    rates = {}
    with tempfile.TemporaryDirectory(prefix="imap-stress-") as tmp:
        srv = Server(Path(tmp), args.backend)
        from mailserver.accounts.auth import hash_password
        from storage.api import AccountState

        user = f"stress@{srv.domain}"
        store = srv.open_store()
        store.accounts.create_account(user, user, hash_password(srv.settings.passwords, PASSWORD), state=AccountState.ACTIVE)
        store.close()
        srv.start()
        try:
            rates["ours"] = measure("ours", srv.host, srv.port("imap"), user, args, srv.proc.pid)
        finally:
            srv.destroy()
    if DOVECOT and not args.no_dovecot:
        dove = Dovecot(free_port())
        dove.add_user("stress@example.gov.vn", PASSWORD)
        dove.start()
        try:
            rates["dovecot"] = measure("dovecot", dove.host, dove.port, "stress@example.gov.vn", args)
        finally:
            dove.destroy()
    if len(rates) == 2:
        print(f"ours / dovecot = {rates['ours'] / rates['dovecot']:.2f}")


if __name__ == "__main__":
    main()
