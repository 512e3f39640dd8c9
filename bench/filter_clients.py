"""What the content filter clients cost OUR process per message (the budget is 0.2 ms of CPU).

Runs in one process nothing but the clients (smtp/filters: clamd INSTREAM, spamd SYMBOLS, both
as the MX runs them) on N messages of ~10 KB over C concurrent "sessions", and reports this
process's CPU (user + system) per message; the daemons' own CPU is in their processes and not
counted ("their cost is theirs"). Against:
  - the real daemons (tests/filter_daemons.py: private spamd and clamd, local rules);
  - an instant stub daemon in another process (a fixed clean answer at once): the floor of the
    exchange itself, without the wake-ups that waiting on a slow spamd adds.

    .venv/bin/python bench/filter_clients.py [-n 600] [-c 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.filters import Clamd, Spamd  # noqa: E402
from smtp.filters.clamd import ClamdClient  # noqa: E402
from smtp.filters.spamd import SpamdClient  # noqa: E402
sys.path.insert(0, str(ROOT / "bench"))
from smtp_ingest import free_port, make_message, wait_port  # noqa: E402
from tests.filter_daemons import start_clamd, start_spamd  # noqa: E402

STUB = textwrap.dedent(
    """
    import asyncio, sys

    async def serve(reader, writer):
        first = await reader.read(10)
        if first.startswith(b"zINSTREAM"):
            data = first
            while not data.endswith(b"\\0\\0\\0\\0"):
                data += await reader.read(65536)
            writer.write(b"stream: OK\\0")
        else:
            await reader.read()  # spamc shuts its side after the request
            writer.write(b"SPAMD/1.1 0 EX_OK\\r\\nContent-length: 0\\r\\nSpam: False ; 0.0 / 5.0\\r\\n\\r\\n")
        await writer.drain()
        writer.close()

    async def main(port):
        server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=512)
        async with server:
            await server.serve_forever()

    asyncio.run(main(int(sys.argv[1])))
    """
)


def cpu() -> float:
    t = os.times()
    return t.user + t.system


async def measure(fn, messages: list[bytes], concurrency: int) -> tuple[float, float]:
    """(our CPU ms per message, messages/s)."""
    queue = list(messages)

    async def session() -> None:
        while queue:
            await fn(queue.pop())

    c0, t0 = cpu(), time.perf_counter()
    await asyncio.gather(*(session() for _ in range(concurrency)))
    return (cpu() - c0) / len(messages) * 1000, len(messages) / (time.perf_counter() - t0)


async def run(args, spamd_port: int, spamd_socket: str, clamd_port: int, clamd_socket: str, stub_port: int) -> None:
    rng = random.Random(2026)
    messages = [make_message(i, "an@example.gov.vn", 10 * 1024, rng) for i in range(args.n)]
    real_s, real_c = SpamdClient(Spamd(port=spamd_port)), ClamdClient(Clamd(port=clamd_port))
    stub_s, stub_c = SpamdClient(Spamd(port=stub_port)), ClamdClient(Clamd(port=stub_port))

    def both(c, s):
        async def go(m: bytes) -> None:
            await c.scan(m)
            await s.check(m)
        return go

    unix_c = ClamdClient(Clamd(socket=clamd_socket))
    unix_s = SpamdClient(Spamd(socket=spamd_socket))
    cases = [("clamd", real_c.scan), ("clamd, Unix socket", unix_c.scan), ("spamd", real_s.check), ("spamd, Unix socket", unix_s.check),
             ("clamd + spamd", both(real_c, real_s)), ("clamd + spamd, Unix sockets", both(unix_c, unix_s)),
             ("stub clamd", stub_c.scan), ("stub spamd", stub_s.check), ("stub clamd + spamd", both(stub_c, stub_s))]  # fmt: skip
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in cases}
    for _ in range(args.rounds):
        for name, fn in cases:
            results[name].append(await measure(fn, messages, args.c))
    print(f"{args.n} messages of ~10 KiB, {args.c} concurrent, {args.rounds} rounds (median); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    for name, _ in cases:
        cpu_ms = statistics.median(r[0] for r in results[name])
        rate = statistics.median(r[1] for r in results[name])
        print(f"  {name:28s} our CPU {cpu_ms:6.3f} ms/message   {rate:6.0f} messages/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=600)
    parser.add_argument("-c", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    stub_port = free_port()
    stub = subprocess.Popen([sys.executable, "-c", STUB, str(stub_port)])
    spamd, spamd_unix, clamd = start_spamd(children=4), start_spamd(children=4, unix=True), start_clamd()
    try:
        wait_port(stub_port, stub)
        asyncio.run(run(args, spamd.port, spamd_unix.socket, clamd.port, clamd.socket, stub_port))
    finally:
        stub.terminate()
        stub.wait()
        spamd.stop()
        spamd_unix.stop()
        clamd.stop()


if __name__ == "__main__":
    main()
