"""Many IDLE connections: server memory, and time until all of them see new mail.

    .venv/bin/python bench/imap_idle.py [--connections 5000] [--accounts 50]

Opens the connections from one asyncio client (LOGIN, SELECT INBOX, IDLE), reads the server's
resident memory, then sends one message to every account over SMTP and measures the time from
the SMTP connection (and from the end of the transaction) until the last connection has
printed ``* n EXISTS``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import smtplib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import Server  # noqa: E402

PASSWORD = "Idle-bench-2024"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def idle_client(host: str, port: int, user: str, ready: asyncio.Event, counter: list, seen: asyncio.Queue) -> None:
    try:
        await _idle_client(host, port, user, ready, counter, seen)
    except Exception as e:  # noqa: BLE001  (a bench: count and show, do not hang)
        print("  client failed:", repr(e), flush=True)
        raise


async def _idle_client(host: str, port: int, user: str, ready: asyncio.Event, counter: list, seen: asyncio.Queue) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    await reader.readline()
    writer.write(f'a LOGIN "{user}" "{PASSWORD}"\r\nb SELECT INBOX\r\nc IDLE\r\n'.encode())
    while True:
        line = await reader.readline()
        if line.startswith(b"+ "):
            break
        if not line or line[:2] in (b"a ", b"b ", b"c ") and b" OK" not in line[:5]:
            print("  refused:", line.strip()[:100], flush=True)
            return
    counter[0] += 1
    if counter[0] == counter[1]:
        ready.set()
    while True:
        line = await reader.readline()
        if not line:
            return
        if line.endswith(b" EXISTS\r\n"):
            await seen.put(time.monotonic())
            writer.write(b"DONE\r\nz LOGOUT\r\n")
            return


async def run(srv: Server, users: list[str], connections: int) -> None:
    ready, seen = asyncio.Event(), asyncio.Queue()
    counter = [0, connections]
    started = time.monotonic()
    tasks = []
    for i in range(connections):
        tasks.append(asyncio.create_task(idle_client(srv.host, srv.port("imap"), users[i % len(users)], ready, counter, seen)))
        if i % 200 == 199:
            await asyncio.sleep(0.05)
    while not ready.is_set():
        try:
            await asyncio.wait_for(ready.wait(), timeout=10)
        except asyncio.TimeoutError:
            print(f"  {counter[0]} idling after {time.monotonic() - started:.0f} s, RSS {rss_mb(srv.proc.pid):.0f} MB", flush=True)
            if time.monotonic() - started > 600:
                raise
    print(f"{connections} connections idling after {time.monotonic() - started:.1f} s; server RSS {rss_mb(srv.proc.pid):.0f} MB", flush=True)
    msg = b"From: bench@example.gov.vn\r\nSubject: ping\r\n\r\nping\r\n"
    cpu0 = cpu_seconds(srv.proc.pid)
    begin = time.monotonic()
    await asyncio.to_thread(_send, srv, users, msg)
    sent = time.monotonic()
    last = sent
    for _ in range(connections):
        last = await asyncio.wait_for(seen.get(), timeout=120)
    print(f"all {connections} saw EXISTS {last - begin:.2f} s after the SMTP connection opened "
          f"({last - sent:.2f} s after the SMTP transaction ended, {sent - begin:.2f} s after it opened); "
          f"server CPU from the SMTP connection on {cpu_seconds(srv.proc.pid) - cpu0:.2f} s", flush=True)
    for t in tasks:
        t.cancel()


def _send(srv: Server, users: list[str], msg: bytes) -> None:
    with smtplib.SMTP(srv.host, srv.port("smtp")) as s:
        s.sendmail("bench@example.gov.vn", users, msg)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=5000)
    ap.add_argument("--accounts", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="imap-idle-") as tmp:
        srv = Server(Path(tmp), "sqlite")
        from mailserver.accounts.auth import hash_password
        from storage.api import AccountState

        store = srv.open_store()
        pw = hash_password(srv.settings.passwords, PASSWORD)
        users = [f"idle{i}@{srv.domain}" for i in range(args.accounts)]
        for u in users:
            store.accounts.create_account(u, u, pw, state=AccountState.ACTIVE)
        store.close()
        srv.start()
        try:
            print(f"server RSS at start {rss_mb(srv.proc.pid):.0f} MB")
            asyncio.run(run(srv, users, args.connections))
        finally:
            srv.destroy()


if __name__ == "__main__":
    main()
