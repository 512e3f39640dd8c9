"""Disk benchmark: what N delivered messages of ~10 KB cost on disk, table by table (SQLite).

Starts its own server as bench/smtp_ingest.py does, delivers N messages over SMTP, waits until
every one is readable over IMAP *and* the background search indexer has caught up (the FTS5
marks in ``fts_state`` reach the newest row), optionally fetches every ENVELOPE and
BODYSTRUCTURE once (what a mail client does on first sync, which fills the rendering cache),
stops the server cleanly and prints the database file, its WAL, the blob files, and the pages
of every table with its indexes (SQLite's ``dbstat``), beside the raw bytes delivered.

    .venv/bin/python bench/disk.py [-n 20000] [-c 20] [--accounts 20] [--size 10240] [--no-fetch]
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import random
import sqlite3
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from smtp_ingest import PASSWORD, add_accounts, blast, make_message, poll_imap, start_our_server, stop

MB = 1024 * 1024


def wait_indexed(db: Path, deadline_s: float = 1800) -> float:
    """Seconds until every FTS5 mark in fts_state reaches the newest blob_meta row."""
    start = time.perf_counter()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        while True:
            newest = conn.execute("SELECT coalesce(max(rowid), 0) FROM blob_meta").fetchone()[0]
            marks = conn.execute("SELECT * FROM fts_state").fetchone()[1:]
            if all(mark >= newest for mark in marks):
                return time.perf_counter() - start
            if time.perf_counter() - start > deadline_s:
                raise TimeoutError(f"search indexer still behind after {deadline_s:.0f} s: {marks} < {newest}")
            time.sleep(0.5)
    finally:
        conn.close()


def fetch_all(port: int, accounts: list[str]) -> None:
    for address in accounts:
        c = imaplib.IMAP4("127.0.0.1", port)
        c.login(address, PASSWORD)
        c.select("INBOX", readonly=True)
        c.fetch("1:*", "(ENVELOPE BODYSTRUCTURE)")
        c.logout()


def by_table(db: Path) -> dict[str, int]:
    """Bytes of pages per table, its indexes and (FTS5) shadow tables counted with it."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_schema"))
        sizes: dict[str, int] = defaultdict(int)
        for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            for fts in ("blob_fts", "blob_words"):
                if table.startswith(fts + "_"):
                    table = fts
            sizes[table] += size
        return dict(sizes)
    finally:
        conn.close()


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20000, help="messages (default 20000)")
    parser.add_argument("-c", type=int, default=20, help="concurrent connections (default 20)")
    parser.add_argument("--accounts", type=int, default=20, help="local recipients (default 20)")
    parser.add_argument("--size", type=int, default=10 * 1024, help="message size in bytes (default 10240)")
    parser.add_argument("--no-fetch", action="store_true", help="skip the first-sync FETCH of every ENVELOPE/BODYSTRUCTURE")
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="disk-bench-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        proc, ports, config_path = start_our_server(data)
        try:
            accounts = add_accounts(config_path, args.accounts)
            jobs = [(r, make_message(i, r, args.size, rng)) for i, r in enumerate(rng.choice(accounts) for _ in range(args.n))]
            raw = sum(len(m) for _, m in jobs)
            _start, _last, refused = asyncio.run(blast(ports["smtp"], jobs, args.c))
            done: dict = {}
            poll_imap(ports["imap"], accounts, args.n - refused, done)
            if "error" in done:
                raise SystemExit(f"not all messages became readable: {done['error']}")
            db = next(data.rglob("*.db"))
            indexing = wait_indexed(db)
            if not args.no_fetch:
                fetch_all(ports["imap"], accounts)
        finally:
            stop(proc)
        tables = by_table(db)
        wal = Path(str(db) + "-wal")
        files = {"database file": db.stat().st_size, "WAL": wal.stat().st_size if wal.exists() else 0,
                 "blob files": tree_size(data / "blobs")}  # fmt: skip
        total = sum(files.values())
        print(f"messages: {args.n - refused} x {raw / args.n / 1024:.1f} KiB = {raw / MB:.0f} MiB delivered; "
              f"indexer caught up {indexing:.0f} s after the last message was readable")  # fmt: skip
        print(f"on disk: {total / MB:.0f} MiB ({total / raw:.2f}x the mail)")
        for name, size in files.items():
            print(f"  {name:<16} {size / MB:8.1f} MiB")
        print("database pages by table (indexes and FTS5 shadow tables with their table):")
        for name, size in sorted(tables.items(), key=lambda kv: -kv[1]):
            if size >= MB / 10:
                print(f"  {name:<16} {size / MB:8.1f} MiB  ({size / raw:.2f}x)")


if __name__ == "__main__":
    main()
