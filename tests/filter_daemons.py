"""Private SpamAssassin, ClamAV and OpenDKIM daemons for the filter tests, each on a free port.

Nothing is downloaded: spamd gets a local rules file (GTUBE and one test rule), clamd a signature
database written here (EICAR as an ``.ndb`` body signature), opendkim verifies only (no key needed).
A missing daemon skips, which tests/conftest.py turns into a failure under CI=true (the Makefile's
``clients`` target installs them). Run as root, spamd must drop to ``nobody``, so its files live
in a directory everyone can read.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
#: A phrase our local rule scores 7.0: above junk_score 5, below reject_score 15.
JUNK_PHRASE = "cheap pills"

SA_RULES = r"""
required_score 5.0
util_rb_tld vn com org net
util_rb_2tld gov.vn com.vn
body GTUBE /XJS\*C4JDBQADN1\.NSBN3\*2IDNEN\*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL\*C\.34X/
score GTUBE 1000
describe GTUBE Generic Test for Unsolicited Bulk Email
body LOCAL_TEST_JUNK /cheap pills/
score LOCAL_TEST_JUNK 7.0
"""


def free_port() -> int:
    """A port of this test worker's range (tests/conftest.py); any free one outside pytest (bench/)."""
    try:
        from tests.conftest import free_port as worker_port
    except ImportError:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    return worker_port()


def _binary(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        pytest.skip(f"{name} not installed")
    return path


def wait_port(port: int | str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Until the daemon accepts on ``port`` (or the Unix socket path ``port``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        unix = isinstance(port, str)
        with socket.socket(socket.AF_UNIX if unix else socket.AF_INET) as s:
            s.settimeout(0.2)
            if s.connect_ex(port if unix else ("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"daemon did not listen on {port}:\n{log.read_text(errors='replace')[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Daemon:
    def __init__(self, argv: list[str], port: int, root: Path, socket_path: str | None = None) -> None:
        self.port = port
        self.socket = socket_path
        self.root = root
        self.log = root / "daemon.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=root)
        try:
            wait_port(socket_path or port, self.proc, self.log)
        except BaseException:
            stop(self.proc)
            raise

    def stop(self) -> None:
        stop(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)  # its configuration, database, socket and log


def start_spamd(children: int = 2, unix: bool = False) -> Daemon:
    """spamd on a free TCP port, or (``unix``) on a Unix socket only (``Daemon.socket``)."""
    spamd = _binary("spamd")
    root = Path(tempfile.mkdtemp(prefix="spamd-"))
    (root / "rules").mkdir()
    (root / "site").mkdir()
    (root / "rules" / "00_local.cf").write_text(SA_RULES)
    (root / "site" / "init.pre").write_text("loadplugin Mail::SpamAssassin::Plugin::Check\n")
    os.chmod(root, 0o755)
    port = free_port()
    argv = [spamd, "-C", str(root / "rules"), "--siteconfigpath", str(root / "site"), "-i", "127.0.0.1",
            "-p", str(port), "-A", "127.0.0.1", "-m", str(children), "--min-children=1", f"--max-spare={children}", "-x", "-L",
            "-s", "stderr", "--pidfile", str(root / "pid")]  # fmt: skip
    if os.geteuid() == 0:
        argv += ["-u", "nobody"]
    if unix:
        argv += [f"--socketpath={root / 'spamd.sock'}", "--socketmode=0666"]
        return Daemon(argv, port, root, str(root / "spamd.sock"))
    return Daemon(argv, port, root)


def start_clamd() -> Daemon:
    clamd = _binary("clamd")
    root = Path(tempfile.mkdtemp(prefix="clamd-"))
    (root / "db").mkdir()
    (root / "db" / "test.ndb").write_text(f"Test.EICAR:0:*:{EICAR.hex()}\n")
    port = free_port()
    user = "User root\n" if os.geteuid() == 0 else ""
    (root / "clamd.conf").write_text(
        f"TCPSocket {port}\nTCPAddr 127.0.0.1\nLocalSocket {root / 'clamd.sock'}\nDatabaseDirectory {root / 'db'}\nForeground yes\n"
        f"LogFile {root / 'clamd.log'}\nPidFile {root / 'pid'}\nScanMail yes\n{user}"
    )
    daemon = Daemon([clamd, "-c", str(root / "clamd.conf")], port, root)
    daemon.socket = str(root / "clamd.sock")  # the same daemon on a Unix socket
    return daemon


def start_opendkim() -> Daemon:
    """OpenDKIM as a verifying milter: adds Authentication-Results (insert-header) and removes
    any earlier one with its own authserv-id (RemoveARAll: a change-header to nothing)."""
    opendkim = _binary("opendkim")
    root = Path(tempfile.mkdtemp(prefix="opendkim-"))
    port = free_port()
    user = "UserID root\n" if os.geteuid() == 0 else ""
    (root / "opendkim.conf").write_text(
        f"Socket inet:{port}@127.0.0.1\nMode v\nBackground no\nSyslog no\nAuthservID milter.example.gov.vn\n"
        f"AlwaysAddARHeader yes\nRemoveARAll yes\nPidFile {root / 'pid'}\n{user}"
    )
    return Daemon([opendkim, "-x", str(root / "opendkim.conf"), "-f"], port, root)


def start_clamav_milter(clamd_port: int, on_infected: str = "Quarantine") -> Daemon:
    """clamav-milter in front of ``clamd_port``: adds X-Virus-Scanned and X-Virus-Status, replacing
    any that came with the message (AddHeader Replace: a change-header action), quarantines or
    rejects infected mail (``on_infected``) and defers (tempfail) when clamd cannot be reached."""
    binary = _binary("clamav-milter")
    root = Path(tempfile.mkdtemp(prefix="clamav-milter-"))
    port = free_port()
    (root / "clamav-milter.conf").write_text(
        f"MilterSocket inet:{port}@127.0.0.1\nForeground true\nClamdSocket tcp:127.0.0.1:{clamd_port}\n"
        f"OnClean Accept\nOnInfected {on_infected}\nOnFail Defer\nAddHeader Replace\nReadTimeout 30\n"
        f"LogFile {root / 'milter.log'}\nPidFile {root / 'pid'}\nTemporaryDirectory {root}\n"
    )
    return Daemon([binary, "-c", str(root / "clamav-milter.conf")], port, root)


class Hanging:
    """A socket that accepts connections and never answers: a filter that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept(): the thread ends
        except OSError:
            pass
        self.sock.close()
        self._thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()
