"""Benchmark: IMAP SEARCH over a folder of Vietnamese mail.

Loads N messages (default 100,000) with Vietnamese subjects and bodies into one INBOX through
the storage API (the same put_blob + deliver path SMTP uses), starts the real server, and times
``UID SEARCH SUBJECT`` and ``UID SEARCH TEXT`` with and without tones over imaplib.
Target: each under 200 ms median.

    .venv/bin/python bench/search.py [--messages 100000] [--repeat 7] [--backend sqlite|postgresql]
                                     [--data-dir DIR [--load-only]]

Loading 100,000 messages takes minutes: ``--data-dir DIR`` keeps the loaded server (files, and
the PostgreSQL schema's name) in DIR and reuses it on the next run with the same --messages and
--backend, so only the searches are timed again (the schema is migrated on reuse, so a new
migration is exercised on a loaded store). ``--load-only`` loads and stops; load under the shared
lock and time under the exclusive one.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import imaplib
import json
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.api import AccountState, DeliveryTarget  # noqa: E402
import tests.conftest as conftest  # noqa: E402
from tests.conftest import Server  # noqa: E402

SUBJECTS = [
    "Công văn số {n} về việc triển khai kế hoạch năm 2026",
    "Báo cáo tình hình thực hiện nhiệm vụ quý {q}",
    "Thông báo lịch họp giao ban tuần {n}",
    "Tờ trình phê duyệt dự toán kinh phí {n}",
    "Giấy mời dự hội nghị tổng kết công tác",
    "Quyết định điều động cán bộ số {n}",
]
WORDS = (
    "đề nghị các đơn vị phối hợp thực hiện nghiêm túc nội dung công văn báo cáo kết quả về sở "
    "trước ngày kế hoạch triển khai chuyển đổi số hành chính công ủy ban nhân dân tỉnh lâm đồng "
    "trân trọng kính gửi giám đốc phòng tổ chức cán bộ văn thư lưu trữ tài liệu điện tử"
).split()


def make_message(rng: random.Random, n: int) -> bytes:
    subject = rng.choice(SUBJECTS).format(n=n, q=rng.randint(1, 4))
    body = " ".join(rng.choice(WORDS) for _ in range(1400)) + f"\r\nMã hồ sơ HS-{n:06d}\r\n"
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    head = (
        f"From: Văn thư <vanthu{n % 50}@lamdong.gov.vn>\r\nTo: annv@example.gov.vn\r\n"
        f"Subject: {subject}\r\nDate: Mon, 23 Nov 2026 08:00:00 +0700\r\n"
        f"Message-ID: <bench-{n}@lamdong.gov.vn>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return head.encode() + "\r\n".join(lines).encode() + b"\r\n"


def load(server: Server, count: int) -> float:
    store = server.open_store()
    try:
        account = store.accounts.get_account("annv@example.gov.vn")
        if account is None:
            account = store.accounts.create_account("annv@example.gov.vn", "Nguyễn Văn An", None, state=AccountState.ACTIVE)
        rng = random.Random(7)
        messages = (make_message(rng, n) for n in range(count))
        started = time.perf_counter()

        def deliver(raw: bytes) -> None:
            store.messages.deliver(store.messages.put_blob(raw), [DeliveryTarget(account.id)])

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for i, _ in enumerate(pool.map(deliver, messages, chunksize=64)):
                if i and i % 10_000 == 0:
                    print(f"  loaded {i}", flush=True)
        return time.perf_counter() - started
    finally:
        store.close()


def catch_up(server: Server) -> None:
    """Index every loaded body before timing (the server's own indexer would, a moment later);
    on PostgreSQL gather the planner's statistics, as autovacuum would after such a load (the
    test cluster runs without it)."""
    store = server.open_store()
    try:
        while store.search.index_pending(5000):
            pass
        if not store.is_sqlite:
            with store.core.reading() as conn:
                conn.exec_driver_sql("ANALYZE")
    finally:
        store.close()


def open_server(args) -> tuple[Server, bool]:
    """A server over ``args.data_dir`` (reused when it holds the same load), and whether it is loaded."""
    root = Path(args.data_dir)
    marker = root / "bench.json"
    want = {"messages": args.messages, "backend": args.backend}
    if marker.exists():
        saved = json.loads(marker.read_text())
        if {k: saved.get(k) for k in want} != want:
            sys.exit(f"{root} holds {saved}, not {want}: use another --data-dir")
        if saved.get("pg_name"):
            url = f"{conftest.PG_URL}{'&' if '?' in conftest.PG_URL else '?'}options=-csearch_path%3D{saved['pg_name']},public"
            conftest._pg_database = lambda: (saved["pg_name"], url)
        return Server(root, args.backend), saved.get("loaded", False)
    server = Server(root, args.backend)
    server.add_account("annv@example.gov.vn", "Bench-2026!")
    marker.write_text(json.dumps({**want, "pg_name": server.pg_name, "loaded": False}))
    return server, False


def mark_loaded(args) -> None:
    marker = Path(args.data_dir) / "bench.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "loaded": True}))


def timed(client: imaplib.IMAP4, repeat: int, keys: tuple, literal: bytes | None = None) -> tuple[float, int]:
    """Median milliseconds and hit count of ``UID SEARCH keys`` (the last key sent as a literal)."""
    times, hits = [], 0
    for _ in range(repeat):
        client.literal = literal
        started = time.perf_counter()
        typ, data = client.uid("SEARCH", *keys)
        times.append((time.perf_counter() - started) * 1000)
        assert typ == "OK", data
        hits = len(data[0].split())
    return statistics.median(times), hits


def run(args, server: Server, loaded: bool) -> None:
    if not loaded:
        seconds = load(server, args.messages)
        print(f"loaded {args.messages} messages in {seconds:.1f} s ({args.messages / seconds:.0f}/s)")
        if args.data_dir:
            mark_loaded(args)
    catch_up(server)
    if args.load_only:
        return
    server.start(timeout=120)
    client = imaplib.IMAP4(server.host, server.port("imap"))
    # imaplib writes a literal and its CRLF in two sends: with Nagle on, the second waits for the
    # server's delayed ACK (40 ms) — the client's cost, not the search's.
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.login("annv@example.gov.vn", "Bench-2026!")
    client.select("INBOX", readonly=True)
    cases = [
        ("SUBJECT with tones", ("CHARSET", "UTF-8", "SUBJECT", "Tờ trình".encode())),
        ("SUBJECT without tones", ("SUBJECT", '"to trinh"')),
        ("SUBJECT rare", ("SUBJECT", '"so 4242 "')),
        ("TEXT with tones", ("CHARSET", "UTF-8", "TEXT", "HS-004242".encode())),
        ("TEXT without tones", ("TEXT", '"chuyen doi so"')),
        ("TEXT rare without tones", ("TEXT", '"hs-077777"')),
    ]
    cpu_before = server_cpu(server)
    print(f"{'search':<28}{'median ms':>10}{'hits':>8}")
    for label, keys in cases:
        literal = keys[-1] if isinstance(keys[-1], bytes) else None
        median, hits = timed(client, args.repeat, keys[:-1] if literal else keys, literal)
        print(f"{label:<28}{median:>10.1f}{hits:>8}")
    cpu = server_cpu(server) - cpu_before
    print(f"server CPU for all searches: {cpu * 1000:.0f} ms ({len(cases) * args.repeat} searches)")
    client.logout()


def server_cpu(server: Server) -> float:
    """User+system CPU seconds of the server process so far (Linux /proc)."""
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--data-dir", help="keep the loaded server here and reuse it on later runs")
    parser.add_argument("--load-only", action="store_true", help="load (with --data-dir) and stop")
    args = parser.parse_args()
    if args.load_only and not args.data_dir:
        parser.error("--load-only needs --data-dir")
    if args.data_dir:
        server, loaded = open_server(args)
        try:
            run(args, server, loaded)
        finally:
            server.stop()
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), args.backend)
        try:
            server.add_account("annv@example.gov.vn", "Bench-2026!")
            run(args, server, False)
        finally:
            server.destroy()


if __name__ == "__main__":
    main()
