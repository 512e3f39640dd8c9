"""CPU cost of the reports' daily counters (storage/sql/usage_days.py): one ``count`` on the
delivery/login path, and one batch write of N account-days. CPU time (process_time), not wall
time, so a loaded machine distorts it less.

    .venv/bin/python bench/usage_counter.py [--accounts 2000] [--counts 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--counts", type=int, default=200_000)
    args = parser.parse_args()
    from storage.migrate import upgrade
    from storage.sql.store import SqlStore

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        store = SqlStore(url, blob_dir=Path(tmp) / "blobs")
        store.accounts.add_domain("example.gov.vn")
        ids = [store.accounts.create_account(f"nv{i}@example.gov.vn", f"Nhân viên {i}", None).id
               for i in range(args.accounts)]
        store.usage.days.interval = 3600  # the background writer stays out of the measurement
        facts = ("checks", "received", "login_imap")
        started = time.process_time()
        for n in range(args.counts):
            store.usage.count(ids[n % len(ids)], facts[n % 3])
        per_count = (time.process_time() - started) / args.counts
        started = time.process_time()
        rows = store.usage.flush_counts()
        flush = time.process_time() - started
        store.close()
    print(f"count(): {per_count * 1e6:.2f} µs CPU each ({args.counts} calls)")
    print(f"flush: {rows} account-days in one batch, {flush * 1e3:.1f} ms CPU ({flush / rows * 1e6:.1f} µs per row)")


if __name__ == "__main__":
    main()
