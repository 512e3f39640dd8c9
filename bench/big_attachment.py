"""Big-attachment benchmark: one message with a 20 MiB attachment (~28 MB in base64)
over SMTP to a running server; the time to accept it and the server process's memory growth.

Starts the real server like the tests do (tests/conftest.py ``Server``: ``python -m mailserver
serve`` on free loopback ports, temporary data dir), then for each run:
  - sends MAIL/RCPT/DATA, streams the message, and times (a) the whole transaction,
    (b) end of data (CRLF.CRLF sent) to the 250 reply: the server's own work to accept;
  - samples the server's /proc/<pid>/status VmRSS every few ms during the transaction, and
    VmHWM (the kernel's peak) before and after; growth = peak - RSS just before the transaction.
Target: peak growth under 1.5x the encoded message, acceptance within 2x Postfix
(0.18 s there).

    .venv/bin/python bench/big_attachment.py [--mib 20] [--repeat 3] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import base64
import os
import smtplib
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import Server  # noqa: E402 - after the path set-up

MB = 1_000_000
MiB = 1024**2


def build_message(attachment_bytes: int, sender: str, rcpt: str) -> bytes:
    data = os.urandom(attachment_bytes)
    b64 = base64.encodebytes(data).replace(b"\n", b"\r\n")  # 76-character lines, CRLF
    head = (
        f"From: Nguyễn Văn An <{sender}>\r\nTo: {rcpt}\r\nSubject: Công văn kèm tài liệu\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nKính gửi anh chị, tài liệu đính kèm.\r\n"
        "--b1\r\nContent-Type: application/pdf; name=\"tai-lieu.pdf\"\r\n"
        "Content-Disposition: attachment; filename=\"tai-lieu.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    return head + b64 + b"--b1--\r\n"


def status(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


class Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.002) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, status(self.pid)["VmRSS"])
            time.sleep(self.interval)


def send(host: str, port: int, sender: str, rcpt: str, message: bytes) -> tuple[float, float, int]:
    """(transaction seconds, end-of-data → reply seconds, reply code), streaming the data."""
    smtp = smtplib.SMTP(host, port, timeout=300)
    try:
        smtp.ehlo("bench.example.gov.vn")
        t0 = time.perf_counter()
        code, _ = smtp.mail(sender, [f"SIZE={len(message)}"])
        assert code == 250, code
        code, _ = smtp.rcpt(rcpt)
        assert code == 250, code
        code, _ = smtp.docmd("DATA")
        assert code == 354, code
        stuffed = smtplib._quote_periods(message)  # no line starts with "." here; kept for honesty
        view = memoryview(stuffed)
        for start in range(0, len(view), 1 << 20):
            smtp.sock.sendall(view[start : start + (1 << 20)])
        t_sent = time.perf_counter()
        smtp.sock.sendall(b".\r\n" if stuffed.endswith(b"\r\n") else b"\r\n.\r\n")
        code, _ = smtp.getreply()
        t_done = time.perf_counter()
        return t_done - t0, t_done - t_sent, code
    finally:
        smtp.quit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=20, help="attachment size in MiB (decoded)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = ap.parse_args()
    if args.backend == "postgresql" and not os.environ.get("MAILSERVER_TEST_DATABASE_URL"):
        sys.exit("set MAILSERVER_TEST_DATABASE_URL for --backend postgresql")

    with tempfile.TemporaryDirectory(prefix="bench-big-") as tmp:
        srv = Server(Path(tmp), args.backend)
        try:
            rcpt, sender = f"annv@{srv.domain}", f"sender@{srv.domain}"
            srv.add_account(rcpt, "Bench-pass-2026!")
            srv.start()
            pid = srv.proc.pid
            message = build_message(args.mib * MiB, sender, rcpt)
            size = len(message)
            print(f"server pid {pid} ({args.backend}); message {size:,} bytes "
                  f"({size / MB:.1f} MB) carrying {args.mib} MiB decoded")
            time.sleep(1.0)  # let start-up allocations settle
            print(f"{'run':>3} {'code':>4} {'total s':>8} {'accept s':>8} {'RSS before MB':>13} "
                  f"{'peak MB':>8} {'growth MB':>9} {'x msg':>6} {'HWM+ MB':>8}")
            for run in range(1, args.repeat + 1):
                before = status(pid)
                sampler = Sampler(pid)
                sampler.start()
                total, accept, code = send(srv.host, srv.port("smtp"), sender, rcpt, message)
                time.sleep(0.05)
                sampler.done.set()
                sampler.join()
                after = status(pid)
                peak = max(sampler.peak, after["VmRSS"])
                growth = peak - before["VmRSS"]
                print(f"{run:>3} {code:>4} {total:>8.3f} {accept:>8.3f} {before['VmRSS'] / MB:>13.1f} "
                      f"{peak / MB:>8.1f} {growth / MB:>9.1f} {growth / size:>6.2f} "
                      f"{(after['VmHWM'] - before['VmHWM']) / MB:>8.1f}")
            from quota import measure_attachments
            from storage.mime import parse

            t0 = time.perf_counter()
            measured = measure_attachments(parse(message, search_text=False, measure=True)["structure"])
            print(f"for comparison, in this process: storage.mime.parse(measure=True) + quota.measure_attachments "
                  f"{time.perf_counter() - t0:.3f} s ({measured.total_decoded_bytes:,} decoded bytes): SMTP's one "
                  f"parse of the message after DATA, reused to store it")
            store = srv.open_store()
            try:
                account = store.accounts.get_account(rcpt)
                print(f"stored: {account.used_messages} message(s), {account.used_bytes:,} bytes")
            finally:
                store.close()
        finally:
            srv.destroy()


if __name__ == "__main__":
    main()
