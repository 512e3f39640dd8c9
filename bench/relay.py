"""Relay benchmark (not a timed test): N messages submitted over C connections to server A
and relayed by A's outbound queue to server B (a second `mailserver serve`, static route).

Reports submitted/s (until the last 250) and delivered/s (until the last message is in B's
INBOX, from the first submission). Usage:

    .venv/bin/python bench/relay.py [--messages 2000] [--connections 10] [--size 2048] [--ed25519]

A signs with RSA (and Ed25519 too with ``--ed25519``). Also printed: the CPU seconds per message
of A and B, the figure that does not depend on what else the machine is doing.

Mode "submission": A runs as a real server and messages go through its submission port (needs
mailserver/app.py to start the outbound service). Until then the script says so and uses mode
"in-process": C tasks put the bodies and enqueue them on A's store, with the worker running in
this process — the same queue, worker, DKIM signing and SMTP client, without A's submission.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import Server  # noqa: E402

SENDER = "an@example.gov.vn"
RCPT = "bob@other.gov.vn"
PASSWORD = "Mat-khau-2026!"


def body(i: int, size: int) -> bytes:
    head = (f"From: Nguyễn Văn An <{SENDER}>\r\nTo: <{RCPT}>\r\nSubject: Báo cáo số {i}\r\n"
            f"Message-ID: <bench-{i}@example.gov.vn>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0700\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n").encode()  # fmt: skip
    line = "Nội dung báo cáo tháng mười một của đơn vị.\r\n".encode()
    return head + line * max(1, (size - len(head)) // len(line))


def inbox_count(store) -> int:
    account = store.accounts.get_account(RCPT)
    return store.folders.folder_status(store.folders.get_folder(account.id, "INBOX").id).messages


def wait_delivered(b: Server, total: int, start: float, timeout: float) -> float:
    store = b.open_store()
    try:
        while inbox_count(store) < total:
            if time.monotonic() - start > timeout:
                raise SystemExit(f"only {inbox_count(store)}/{total} delivered after {timeout:.0f}s")
            time.sleep(0.2)
        return time.monotonic()
    finally:
        store.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def submit_over_smtp(a: Server, messages: int, connections: int, size: int) -> float:
    import smtplib

    per = messages // connections
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with smtplib.SMTP(a.host, a.port("submission"), timeout=60) as client:
                client.login(SENDER, PASSWORD)
                for i in range(per):
                    client.sendmail(SENDER, [RCPT], body(n * per + i, size))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"submission failed: {errors[0]!r}")
    return time.monotonic()


async def in_process(a: Server, b: Server, messages: int, connections: int, size: int, timeout: float):
    from smtp.outbound.service import OutboundService

    store = a.open_store()
    service = OutboundService(a.settings, store)
    await service.start()
    loop = asyncio.get_running_loop()
    per = messages // connections

    async def producer(n: int) -> None:
        for i in range(per):
            blob = await loop.run_in_executor(None, store.messages.put_blob, body(n * per + i, size))
            await service.enqueue(blob, SENDER, [RCPT])

    start = time.monotonic()
    try:
        await asyncio.gather(*(producer(n) for n in range(connections)))
        submitted = time.monotonic()
        delivered = await loop.run_in_executor(None, wait_delivered, b, per * connections, start, timeout)
    finally:
        await service.stop()
        store.close()
    return start, submitted, delivered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--ed25519", action="store_true", help="A signs with an Ed25519 key as well (RFC 8463)")
    args = parser.parse_args()
    wired = "start_outbound" in (ROOT / "mailserver" / "app.py").read_text()
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        b = Server(Path(tmp) / "b", "sqlite", {"domains": ["other.gov.vn"]})
        a = Server(Path(tmp) / "a", "sqlite",
                   {"routes": {"other.gov.vn": f"127.0.0.1:{b.port('smtp')}"}, "dns": {"static_only": True}})  # fmt: skip
        try:
            b.add_account(RCPT, PASSWORD, name="Trần Thị Bình")
            a.add_account(SENDER, PASSWORD)
            from smtp.dkim import generate_key

            generate_key(a.settings.data_dir, "example.gov.vn", a.settings.dkim.selector)  # outgoing mail is signed
            if args.ed25519:
                generate_key(a.settings.data_dir, "example.gov.vn", "ed25519", kind="ed25519")
            b.start()
            total = args.messages // args.connections * args.connections
            if wired:
                mode = "submission"
                a.start()
                start = time.monotonic()
                cpu = (cpu_seconds(a.proc.pid), cpu_seconds(b.proc.pid))
                submitted = submit_over_smtp(a, total, args.connections, args.size)
                delivered = wait_delivered(b, total, start, args.timeout)
                cpu = (cpu_seconds(a.proc.pid) - cpu[0], cpu_seconds(b.proc.pid) - cpu[1])
            else:
                mode = "in-process (mailserver/app.py does not start the outbound service yet)"
                start, submitted, delivered = asyncio.run(in_process(a, b, total, args.connections, args.size, args.timeout))
            signed = (Path(a.settings.data_dir) / "dkim" / "example.gov.vn.mail.key").exists()
            print(f"mode: {mode}; DKIM signing: {'RSA' if signed else 'off'}{' + Ed25519' if args.ed25519 else ''}")
            print(f"{total} messages of ~{args.size} bytes, {args.connections} connections, SQLite on both sides")
            print(f"submitted: {total / (submitted - start):8.1f} msg/s ({submitted - start:.1f} s)")
            print(f"delivered: {total / (delivered - start):8.1f} msg/s ({delivered - start:.1f} s from the first submission)")
            if wired:
                print(f"CPU per message: A {cpu[0] / total * 1000:.1f} ms, B {cpu[1] / total * 1000:.1f} ms")
        finally:
            a.destroy()
            b.destroy()


if __name__ == "__main__":
    main()
