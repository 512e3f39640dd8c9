"""IMAP benchmark: a folder of N ~10 KB messages, medians of the usual client commands.

    .venv/bin/python bench/imap.py [--messages 10000] [--runs 5] [--size 9500]

Loads the folder through the Store API in-process (many threads, so the writer's group commit
applies), then starts the real server (``mailserver serve``) and times each command over a
loopback socket: with a raw client that reads the response at C speed (what the server costs),
and again with imaplib (what a Python client sees). Prints per command the median, min and
first-run milliseconds, the server's CPU per run, Dovecot's figure and the target from the
issue, and the server's resident memory before and after. ``--cold`` drops the ENVELOPE/
BODYSTRUCTURE renderings kept earlier: the server renders them ahead once the store is quiet
(imap/prerender.py; the time it took is printed) and the first FETCH finds them kept; with
``--no-prerender`` as well, the first FETCH renders them and its run shows what that costs.
Timing starts once the server has gone idle (no CPU for half a second).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import imaplib
import os
import random
import socket
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


def make_message(i: int, rng: random.Random, size: int = 9500) -> bytes:
    subject = " ".join(rng.choice(WORDS) for _ in range(5))
    if i % 100 == 0:
        subject += " zebra"  # the SUBJECT search word: 1 % of messages
    lines = []
    while sum(len(x) for x in lines) < size:
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


def load(srv: Server, count: int, size: int = 9500) -> float:
    from mailserver.accounts.auth import hash_password
    from storage.api import AccountState, DeliveryTarget

    store = srv.open_store()
    account = store.accounts.create_account(ADDRESS, "Bench", hash_password(srv.settings.passwords, PASSWORD), state=AccountState.ACTIVE)
    rng = random.Random(7)
    messages = [make_message(i, rng, size) for i in range(count)]
    started = time.monotonic()

    def one(msg: bytes) -> None:
        store.messages.deliver(store.messages.put_blob(msg), [DeliveryTarget(account.id)])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(one, messages))
    elapsed = time.monotonic() - started
    store.close()
    return elapsed


def proc_status(pid: int, key: str) -> float:
    """A /proc/PID/status size field (VmRSS, VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_idle(pid: int, quiet: float = 0.5, limit: float = 300) -> float:
    """Seconds until the process used no CPU for ``quiet`` seconds."""
    started = time.monotonic()
    last = cpu_seconds(pid)
    while time.monotonic() - started < limit:
        time.sleep(quiet)
        now = cpu_seconds(pid)
        if now - last < 0.01:
            break
        last = now
    return time.monotonic() - started - quiet


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RawClient:
    """Times the server, not the client: sends a command and reads up to its tagged line with
    bytes.find only (literals are skipped by their length, never scanned). imaplib spends more
    time parsing 10,000 FETCH lines than the server spends writing them."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=120)
        self.buf = bytearray()
        self.n = 0
        self._read_tagged(b"*")

    def _recv(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def _read_tagged(self, tag: bytes) -> tuple[int, bytes]:
        """(bytes read, tagged line); the buffer keeps what follows."""
        data = self.buf
        pos = 0  # everything before pos is known not to hold the tagged line
        found, searched = None, -1  # the tagged line's start, as of when len(data) was `searched`
        while True:
            if searched != len(data) or (found is not None and found < pos):
                found, searched = _find_line(data, tag, pos), len(data)
            lit = data.find(b"}\r\n", pos)
            if lit >= 0 and (found is None or lit < found):
                brace = data.rfind(b"{", pos, lit)
                pos = lit + 3
                if brace >= 0 and data[brace + 1 : lit].isdigit():
                    pos += int(data[brace + 1 : lit])
                    while len(data) < pos:
                        self._recv()
                continue
            if found is not None:
                end = data.find(b"\r\n", found)
                if end >= 0:
                    line = bytes(data[found:end])
                    del data[: end + 2]
                    return end + 2, line
            pos = max(pos, len(data) - 40)  # a marker may straddle the next chunk
            self._recv()

    def run(self, command: str) -> int:
        """Bytes of the whole response; raises unless the tagged status is OK."""
        self.n += 1
        tag = b"B%d" % self.n
        self.sock.sendall(tag + b" " + command.encode() + b"\r\n")
        size, line = self._read_tagged(tag)
        if not line.startswith(tag + b" OK"):
            raise AssertionError(line.decode(errors="replace"))
        return size


def _find_line(data: bytearray, tag: bytes, start: int) -> int | None:
    """Where the line starting with ``tag`` begins, at or after ``start``."""
    if start == 0 and data.startswith(tag + b" "):
        return 0
    i = data.find(b"\r\n" + tag + b" ", max(start - 2, 0))
    return None if i < 0 else i + 2


def timed(fn, runs: int, pid: int) -> tuple[list[float], float]:
    """Wall times in ms of each run, and the server's mean CPU ms per run."""
    times = []
    cpu = cpu_seconds(pid)
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return times, (cpu_seconds(pid) - cpu) * 1000 / runs


#: Reference figures for Dovecot on the same kind of machine, and the targets (2x Dovecot;
#: SEARCH TEXT faster than Dovecot).
DOVECOT = {"flags": 14, "envelope": 69, "bodystructure": 16, "subject": 24, "text": 674, "bodies": 2}
TARGET = {"flags": 28, "envelope": 138, "bodystructure": 32, "subject": 48, "text": 674, "bodies": 4}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", type=int, default=9500, help="bytes of text per message body (default ~10 KB messages)")
    ap.add_argument("--keep", type=Path, help="load once into this directory and reuse it on later runs")
    ap.add_argument("--cold", action="store_true", help="drop the renderings kept by earlier FETCHes first")
    ap.add_argument("--no-prerender", action="store_true", help="the server does not render ahead of the first FETCH")
    ap.add_argument("--no-imaplib", action="store_true", help="skip the second timing through imaplib")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="imap-bench-") as tmp:
        root = args.keep or Path(tmp)
        loaded = (root / "loaded").exists()
        srv = Server(root, "sqlite", {"limits": {"imap_prerender_quiet": 0}} if args.no_prerender else None)
        if not loaded:
            print(f"loading {args.messages} messages ...", flush=True)
            secs = load(srv, args.messages, args.size)
            print(f"loaded in {secs:.1f} s ({args.messages / secs:.0f} msg/s through the Store API)")
            (root / "loaded").write_text(str(args.messages))
        if args.cold:
            store = srv.open_store()
            store.core.run_write(lambda conn, _changes: conn.exec_driver_sql("DELETE FROM fetch_cache"))
            store.close()
        srv.start()
        pid = srv.proc.pid
        idle = wait_idle(pid)
        print(f"server idle {idle:.1f} s after start (rendering ahead, if anything was left to render)")
        try:
            raw = RawClient(srv.host, srv.port("imap"))
            raw.run(f'LOGIN "{ADDRESS}" "{PASSWORD}"')
            m = imaplib.IMAP4(srv.host, srv.port("imap"))
            m.login(ADDRESS, PASSWORD)
            rss_before, anon_before = proc_status(pid, "VmRSS"), proc_status(pid, "RssAnon")
            n = args.messages
            bodies = ",".join(map(str, random.Random(1).sample(range(1, n + 1), min(100, n))))
            cases = [  # (label, key into DOVECOT/TARGET, command)
                ("SELECT INBOX", None, "SELECT INBOX"),
                ("UID FETCH 1:* (FLAGS)", "flags", "UID FETCH 1:* (FLAGS)"),
                ("FETCH 1:* (ENVELOPE)", "envelope", "FETCH 1:* (ENVELOPE)"),
                ("FETCH 1:* (BODYSTRUCTURE)", "bodystructure", "FETCH 1:* (BODYSTRUCTURE)"),
                # A mail client listing a folder by header fields (no target set).
                ("FETCH 1:* (HEADER.FIELDS)", None, "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (From Subject Date)])"),
                ("UID SEARCH SUBJECT zebra", "subject", "UID SEARCH SUBJECT zebra"),
                ("SEARCH TEXT quokka", "text", "SEARCH TEXT quokka"),
                ("FETCH 100 x BODY.PEEK[]", "bodies", f"FETCH {bodies} (BODY.PEEK[])"),
                # BINARY (RFC 3516): a part's range read and decoded, against BODY of the same part.
                ("FETCH 100 x BODY.PEEK[1]", None, f"FETCH {bodies} (BODY.PEEK[1])"),
                ("FETCH 100 x BINARY.PEEK[1]", None, f"FETCH {bodies} (BINARY.PEEK[1])"),
                ("FETCH 1:* (BINARY.SIZE[1])", None, "FETCH 1:* (BINARY.SIZE[1])"),
            ]
            m.select("INBOX")
            hits = m.uid("SEARCH", "SUBJECT", "zebra")[1][0].split(), m.search(None, "TEXT", "quokka")[1][0].split()
            print(f"sanity: SUBJECT zebra {len(hits[0])} hits, TEXT quokka {len(hits[1])} hits")
            raw.run("SELECT INBOX")
            print("times in ms; 'first' is the first run (ENVELOPE/BODYSTRUCTURE render and keep then, if not kept yet)")
            head = f"{'command':<27} {'median':>7} {'min':>6} {'first':>6} {'srv CPU':>7} {'imaplib':>7} {'Dovecot':>7} {'target':>6}"
            print(head)
            for label, key, command in cases:
                try:
                    times, cpu = timed(lambda: raw.run(command), args.runs, pid)
                    slow = "" if args.no_imaplib else "%7.1f" % statistics.median(
                        timed(lambda: _imaplib(m, command), args.runs, pid)[0])
                except (AssertionError, imaplib.IMAP4.error) as e:
                    print(f"{label:<27} failed: {e}", flush=True)
                    continue
                dove = f"{DOVECOT[key]:>7}" if key else " " * 7
                target = f"{TARGET[key]:>6}" if key else " " * 6
                print(f"{label:<27} {statistics.median(times):>7.1f} {min(times):>6.1f} {times[0]:>6.1f} {cpu:>7.0f} "
                      f"{slow:>7} {dove} {target}", flush=True)
            print(f"server RSS: {rss_before:.0f} MB after login, {proc_status(pid, 'VmRSS'):.0f} MB after the runs "
                  f"(peak {proc_status(pid, 'VmHWM'):.0f} MB); not file-backed: {anon_before:.0f} MB after login, "
                  f"{proc_status(pid, 'RssAnon'):.0f} MB after the runs")
            m.logout()
            errors = [ln for ln in srv.log().splitlines() if "Error" in ln or "error" in ln]
            if errors:
                print("server log errors:", *errors[-10:], sep="\n  ")
        finally:
            srv.destroy()


def _imaplib(m: imaplib.IMAP4, command: str) -> None:
    """The command through imaplib's own reader (responses parsed and collected as usual)."""
    if command.startswith("UID "):
        typ, data = m._simple_command("UID", *command[4:].split(" ", 1))
    else:
        typ, data = m._simple_command(*command.split(" ", 1))
    m.untagged_responses.clear()
    assert typ == "OK", data


if __name__ == "__main__":
    main()
