"""CPU and wall time of one `mailserver account add` process (the issue: ~1 s each, 200 accounts
took over 3 minutes; the goal is 0.2 s). CPU time per command (user + system, from the children's
rusage) is the figure to compare on a loaded machine; wall time is printed with that caveat.

    .venv/bin/python bench/account_add.py [N]
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(n: int = 10) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-account-add-"))
    exe = [sys.executable, "-m", "mailserver"]
    subprocess.run([*exe, "init", "--domain", "example.gov.vn", "--data-dir", str(root / "data")], check=True,
                   capture_output=True, cwd=root)
    config = str(root / "data" / "mailserver.yaml")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    for i in range(n):
        subprocess.run([*exe, "--config", config, "account", "add", f"Nguyễn Văn Thử {i}",
                        "--address", f"thu{i}@example.gov.vn", "--password", "Mk!12345678x"], check=True,
                       capture_output=True, cwd=root)
    wall = (time.perf_counter() - started) / n
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / n
    print(f"account add: {cpu * 1000:.0f} ms CPU per command, {wall * 1000:.0f} ms wall "
          f"(load average {os.getloadavg()[0]:.1f}; wall time depends on it)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
