"""IMAP benchmark (issue 3): a folder of N ~10 KB messages, medians of the usual client commands.

    .venv/bin/python bench/imap.py [--messages 10000] [--runs 5]

Loads the folder through the Store API in-process (many threads, so the writer's group commit
applies), then starts the real server (``mailserver serve``) and times each command over a
loopback socket with imaplib. Prints one line per command: median and min in milliseconds, and
the server's resident memory before and after.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import imaplib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import Server  # noqa: E402  (the same harness the tests use)

ADDRESS = "bench@example.gov.vn"
PASSWORD = "Bench-pass-2024"
WORDS = ("công văn báo cáo kế hoạch thông báo quyết định tờ trình giấy mời biên bản hợp đồng "
         "ngân sách nhân sự đào tạo hội nghị kiểm tra thanh tra tổng kết").split()


def make_message(i: int, rng: random.Random) -> bytes:
    subject = " ".join(rng.choice(WORDS) for _ in range(5))
    if i % 100 == 0:
        subject += " zebra"  # the SUBJECT search word: 1 % of messages
    lines = []
    while sum(len(x) for x in lines) < 9500:
        lines.append(" ".join(rng.choice(WORDS) for _ in range(12)))
    if i % 50 == 0:
        lines[len(lines) // 2] += " quokka"  # the TEXT search word: 2 % of messages, mid-body
    body = "\r\n".join(lines) + "\r\n"
    head = (
        f"From: Phòng {i % 37} <p{i % 37}@example.gov.vn>\r\nTo: {ADDRESS}\r\nSubject: {subject}\r\n"
        f"Date: Mon, 1 Jan 2024 08:{i % 60:02d}:00 +0700\r\nMessage-ID: <{i}@bench>\r\nMIME-Version: 1.0\r\n"
    )
    if i % 10 == 0:
        return (head + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
                + '--b\r\nContent-Type: application/pdf; name="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
                + "QUJD\r\n--b--\r\n").encode()
    return (head + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body).encode()


def load(srv: Server, count: int) -> float:
    from mailserver.auth import hash_password
    from storage.api import AccountState, DeliveryTarget

    store = srv.open_store()
    account = store.create_account(ADDRESS, "Bench", hash_password(srv.settings.passwords, PASSWORD), state=AccountState.ACTIVE)
    rng = random.Random(7)
    messages = [make_message(i, rng) for i in range(count)]
    started = time.monotonic()

    def one(msg: bytes) -> None:
        store.deliver(store.put_blob(msg), [DeliveryTarget(account.id)])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(one, messages))
    elapsed = time.monotonic() - started
    store.close()
    return elapsed


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed(fn, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="load once into this directory and reuse it on later runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="imap-bench-") as tmp:
        root = args.keep or Path(tmp)
        loaded = (root / "loaded").exists()
        srv = Server(root, "sqlite")
        if not loaded:
            print(f"loading {args.messages} messages ...", flush=True)
            secs = load(srv, args.messages)
            print(f"loaded in {secs:.1f} s ({args.messages / secs:.0f} msg/s through the Store API)")
            (root / "loaded").write_text(str(args.messages))
        srv.start()
        try:
            m = imaplib.IMAP4(srv.host, srv.port("imap"))
            m.login(ADDRESS, PASSWORD)
            print(f"server RSS after login: {rss_mb(srv.proc.pid):.0f} MB")
            n = args.messages
            sample = random.Random(1).sample(range(1, n + 1), min(100, n))
            bodies = ",".join(map(str, sample))

            def check(result, expect_lines=None):
                typ, data = result
                assert typ == "OK", data
                return data

            cases = [
                ("SELECT INBOX", lambda: check(m.select("INBOX"))),
                ("UID FETCH 1:* (FLAGS)", lambda: check(m.uid("FETCH", "1:*", "(FLAGS)"))),
                ("FETCH 1:* (ENVELOPE)", lambda: check(m.fetch("1:*", "(ENVELOPE)"))),
                ("FETCH 1:* (BODYSTRUCTURE)", lambda: check(m.fetch("1:*", "(BODYSTRUCTURE)"))),
                ("UID SEARCH SUBJECT zebra", lambda: check(m.uid("SEARCH", "SUBJECT", "zebra"))),
                ("SEARCH TEXT quokka", lambda: check(m.search(None, "TEXT", "quokka"))),
                ("FETCH 100 x BODY.PEEK[]", lambda: check(m.fetch(bodies, "(BODY.PEEK[])"))),
            ]
            m.select("INBOX")
            hits = m.uid("SEARCH", "SUBJECT", "zebra")[1][0].split(), m.search(None, "TEXT", "quokka")[1][0].split()
            print(f"sanity: SUBJECT zebra {len(hits[0])} hits, TEXT quokka {len(hits[1])} hits")
            print(f"{'command':<28} {'median ms':>10} {'min ms':>9}")
            for name, fn in cases:
                try:
                    med, low = timed(fn, args.runs)
                except (AssertionError, imaplib.IMAP4.error) as e:
                    print(f"{name:<28} failed: {e}", flush=True)
                    continue
                print(f"{name:<28} {med:>10.1f} {low:>9.1f}", flush=True)
            print(f"server RSS after the runs: {rss_mb(srv.proc.pid):.0f} MB")
            m.logout()
            errors = [ln for ln in srv.log().splitlines() if "Error" in ln or "error" in ln]
            if errors:
                print("server log errors:", *errors[-10:], sep="\n  ")
        finally:
            srv.destroy()


if __name__ == "__main__":
    main()
