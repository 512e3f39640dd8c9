"""Password guessing benchmark (R-SEC-1): how many passwords one client address gets checked.

    .venv/bin/python bench/guessing.py [--seconds 60] [--connections 8]

Starts the real server (``mailserver serve``, the tests' Server harness, SQLite) with the login
guard at its defaults and loopback not trusted, adds one account, then for ``--seconds`` runs
``--connections`` parallel imaplib clients from 127.0.0.1 that each send wrong passwords, one
LOGIN after another, reconnecting whenever the server closes. Prints the guesses the server
checked (answered ``NO [AUTHENTICATIONFAILED]``) and those refused unchecked (``NO
[UNAVAILABLE]``), per second. Run from another checkout's tree (PYTHONPATH) to compare versions.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import imaplib
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import Server  # noqa: E402


def attack(port: int, user: str, until: float, counts: dict, lock: threading.Lock) -> None:
    n = 0
    while time.monotonic() < until:
        try:
            c = imaplib.IMAP4("127.0.0.1", port, timeout=60)
        except OSError:
            continue
        try:
            while time.monotonic() < until:
                n += 1
                try:
                    c.login(user, f"wrong-{threading.get_ident()}-{n}")
                    kind = "accepted"
                except imaplib.IMAP4.error as e:
                    kind = "refused" if "UNAVAILABLE" in str(e) else "checked"
                with lock:
                    counts[kind] = counts.get(kind, 0) + 1
        except (OSError, imaplib.IMAP4.abort):
            pass
        finally:
            try:
                c.shutdown()
            except OSError:
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    from config.settings import Settings

    extra = {"guard": {"trusted": []}} if "guard" in Settings.model_fields else {}
    with tempfile.TemporaryDirectory() as root:
        srv = Server(Path(root), "sqlite", extra)
        srv.start()
        try:
            user = f"victim@{srv.domain}"
            srv.add_account(user, "Dung-mat-khau-2026!")
            counts: dict[str, int] = {}
            lock = threading.Lock()
            until = time.monotonic() + args.seconds
            with concurrent.futures.ThreadPoolExecutor(args.connections) as pool:
                list(pool.map(lambda _: attack(srv.port("imap"), user, until, counts, lock), range(args.connections)))
        finally:
            srv.destroy()
    checked, refused = counts.get("checked", 0), counts.get("refused", 0)
    print(f"{args.seconds:.0f} s, {args.connections} connections from one address: "
          f"{checked} passwords checked ({checked / args.seconds:.2f}/s), {refused} refused unchecked")


if __name__ == "__main__":
    main()
