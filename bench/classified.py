"""Submission throughput with the classified-document guard (R-SEC-3) on and off, side by side.

Starts its own server twice (``classified.enabled`` false, then true; same data directory
layout, free loopback ports), logs in on submission (587, plaintext AUTH from loopback) over C
concurrent aiosmtplib connections and submits N ordinary letters, each with a clean 1 MB PDF
(a page of text and an embedded scan), to a local account. Prints per configuration: messages/s
accepted, and CPU seconds per message of the server and its extraction processes (``/proc``:
a figure that holds on a loaded machine), and the guard's cost in both.

    .venv/bin/python bench/classified.py [-n 200] [-c 8] [--pdf-size 1048576] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib
import yaml
from smtp_ingest import cpu_seconds, free_port, wait_port  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.classified_docs import letter, message, pdf  # noqa: E402

DOMAIN = "example.gov.vn"
PASSWORD = "Bench-pass-2026!"
SENDER, RCPT = f"annv@{DOMAIN}", f"binhtt@{DOMAIN}"


def start(tmp: Path, enabled: bool) -> tuple[subprocess.Popen, int]:
    data = tmp / ("on" if enabled else "off")
    data.mkdir()
    path = data / "mailserver.yaml"
    cli = [sys.executable, "-m", "mailserver", "--config", str(path)]
    subprocess.run([*cli, "init", "--data-dir", str(data), "--domain", DOMAIN], check=True, capture_output=True, cwd=ROOT)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    port = free_port()
    config["listeners"] = {"submission": {"address": "127.0.0.1", "port": port}}
    config["dns"] = {"static_only": True}
    config["guard"] = {"trusted": ["127.0.0.1/32"], "submission_messages_per_hour": None,
                       "submission_recipients_per_hour": None}
    config["classified"] = {"enabled": enabled}
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    with open(data / "server.log", "wb") as log:
        proc = subprocess.Popen([*cli, "serve"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    wait_port(port, proc)
    for address in (SENDER, RCPT):  # once serve has added the domain
        subprocess.run([*cli, "account", "add", "Nguyễn Văn An", "--address", address, "--password", PASSWORD, "--active"],
                       check=True, capture_output=True, cwd=ROOT)  # fmt: skip
    return proc, port


async def submit(port: int, raw: bytes, n: int, concurrency: int) -> float:
    todo = list(range(n))

    async def worker() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=300) as client:
            await client.login(SENDER, PASSWORD)
            while todo:
                todo.pop()
                errors, reply = await client.sendmail(SENDER, [RCPT], raw)
                assert not errors and "held" not in reply, reply

    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - begin


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("-c", type=int, default=8)
    ap.add_argument("--pdf-size", type=int, default=1024 * 1024)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    text = letter("clean/bi-mat-thu-tin.txt")
    attachment = pdf(text.splitlines(), pad=args.pdf_size)
    raw = message(SENDER, RCPT, "Công văn về sử dụng thư điện tử", text, {"cong-van.pdf": attachment})
    print(f"{args.n} letters of {len(raw) / 1e6:.2f} MB (PDF {len(attachment) / 1e6:.2f} MB) over {args.c} connections")
    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {enabled: start(Path(tmp), enabled) for enabled in (False, True)}
        try:
            for enabled, (proc, port) in servers.items():  # warm-up: connections, worker processes
                asyncio.run(submit(port, raw, args.c, args.c))
            for _ in range(args.rounds):
                for enabled, (proc, port) in servers.items():
                    cpu0 = cpu_seconds(proc.pid)
                    wall = asyncio.run(submit(port, raw, args.n, args.c))
                    results[enabled].append((args.n / wall, (cpu_seconds(proc.pid) - cpu0) / args.n))
        finally:
            for proc, _port in servers.values():
                proc.terminate()
                proc.wait(30)
    rows = {}
    for enabled, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        rows[enabled] = (rate, cpu)
        print(f"guard {'on ' if enabled else 'off'}: {rate:7.1f} msg/s   {cpu * 1000:7.2f} ms CPU/msg (server + extraction)")
    (off_rate, off_cpu), (on_rate, on_cpu) = rows[False], rows[True]
    print(f"guard cost: throughput {100 * (1 - on_rate / off_rate):+.1f} %, CPU per message {100 * (on_cpu / off_cpu - 1):+.1f} %")


if __name__ == "__main__":
    main()
