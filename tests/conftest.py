"""Fixtures that start the real server (``python -m mailserver serve``) on free loopback ports.

The suite runs on SQLite, and also on PostgreSQL when ``MAILSERVER_TEST_DATABASE_URL`` is set
(``.ci/run`` sets it when ``pg_isready`` answers): the ``server`` fixture is parametrised over the
backends, each PostgreSQL server getting a database of its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "example.gov.vn"
SERVICES = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s")
PG_URL = os.environ.get("MAILSERVER_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
pytest_plugins = ["tests.requirements_plugin"]  # @pytest.mark.requirement("R-…"), checked at collection


_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_WORKER_INDEX = int(_WORKER[2:]) if _WORKER[2:].isdigit() else 0
# Each xdist worker takes ports from its own range below the kernel's ephemeral range (32768+),
# so no other worker and no bind(("127.0.0.1", 0)) elsewhere can take a port between our check
# and the server's bind. MAILSERVER_TEST_PORT_BASE / _SPAN move the ranges, so that two suites run
# side by side on one machine (two checkouts) do not take each other's ports either.
_PORT_BASE = int(os.environ.get("MAILSERVER_TEST_PORT_BASE", "20000"))
_PORT_SPAN = int(os.environ.get("MAILSERVER_TEST_PORT_SPAN", "3000"))
_PORT_RANGE = range(_PORT_BASE + _PORT_SPAN * (_WORKER_INDEX % 4),
                    _PORT_BASE + _PORT_SPAN * (_WORKER_INDEX % 4 + 1))
_next_port = [_PORT_RANGE.start + os.getpid() % min(500, _PORT_SPAN // 2)]


def free_port() -> int:
    for _ in range(len(_PORT_RANGE)):
        port = _next_port[0]
        _next_port[0] = port + 1 if port + 1 < _PORT_RANGE.stop else _PORT_RANGE.start
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_PORT_RANGE}")


def wait_until(condition, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Poll ``condition()`` until it returns a true value (returned) or ``timeout`` seconds pass
    (AssertionError). For tests: wait for what must happen, never a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(interval)


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(sql)


def _pg_database() -> tuple[str, str]:
    """A new, empty schema of its own on the test database (much faster than CREATE DATABASE).

    pg_trgm (the search index's extension) is installed once in ``public``, which stays on the
    search path so the migration finds it.
    """
    name = f"mailtest_{uuid.uuid4().hex[:12]}"
    _pg_admin("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    _pg_admin(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in PG_URL else "?"
    return name, f"{PG_URL}{sep}options=-csearch_path%3D{name},public"


def _pg_drop(name: str) -> None:
    _pg_admin(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


class Server:
    """A running ``mailserver serve`` process and the handles tests need."""

    host = "127.0.0.1"
    domain = DOMAIN

    def __init__(self, root: Path, backend: str, extra: dict | None = None, db_url: str | None = None) -> None:
        self.root = root
        self.backend = backend
        self.data_dir = root / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.data_dir / "mailserver.yaml"
        self.ports = {name: free_port() for name in SERVICES}
        self.pg_name = None
        if db_url is not None:  # another server process on the same store (sibling)
            self.db_url = db_url
        elif backend == "postgresql":
            self.pg_name, self.db_url = _pg_database()
        else:
            self.db_url = f"sqlite:///{self.data_dir / 'mail.db'}"
        config = {
            "profile": "none",
            "hostname": "mail.example.gov.vn",
            "domains": [DOMAIN, "sub.example.gov.vn"],
            "data_dir": str(self.data_dir),
            "database": {"url": self.db_url},
            "listeners": {name: {"address": self.host, "port": port} for name, port in self.ports.items()},
            "tls": {"cert": str(self.data_dir / "tls" / "cert.pem"), "key": str(self.data_dir / "tls" / "key.pem")},
            # Tests never ask the network: SPF/DKIM/MX look-ups get only the answers a test configures.
            "dns": {"static_only": True},
            # The tests' own client address is trusted by the login guard: many tests try wrong
            # passwords on purpose. Guard tests connect from 127.0.0.2+ or through a PROXY header.
            "guard": {"trusted": ["127.0.0.1/32"]},
        }
        for key, value in (extra or {}).items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
        self.config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        from config.loader import load_settings
        from mailserver.app import migrate
        from mailserver.maintenance.tls import ensure_certificate

        self.settings = load_settings(self.config_path)
        if self.settings.listeners.web is not None:  # start() also waits for the portal a test configured
            self.ports.setdefault("web", self.settings.listeners.web.port)
        ensure_certificate(self.settings.tls.cert, self.settings.tls.key, self.settings.hostname)
        migrate(self.settings)
        store = self.open_store()
        try:
            for domain in self.settings.domains:
                store.accounts.add_domain(domain)
        finally:
            store.close()
        self.proc: subprocess.Popen | None = None
        self.log_path = root / "server.log"
        self.extra = extra

    def sibling(self, root: Path) -> Server:
        """Another server (own ports and data directory) on this one's database: PostgreSQL's
        several processes. The caller destroys it; it owns no database."""
        return Server(root, self.backend, self.extra, db_url=self.db_url)

    def port(self, service: str) -> int:
        return self.ports[service]

    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["MAILSERVER_CONFIG"] = str(self.config_path)
        return env

    def start(self, timeout: float = 30, workers: int = 1) -> None:
        """Start ``serve`` and return once every listener answers (and, with ``workers``, once
        every worker process said it serves: the parent's sockets answer before that)."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [sys.executable, "-m", "mailserver", "--config", str(self.config_path), "serve"]
        if workers > 1:
            command += ["--workers", str(workers)]
        with open(self.log_path, "ab") as log:  # the server has its own copy of the descriptor
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.root)
        deadline = time.monotonic() + timeout
        pending = set(self.ports)
        if workers > 1:
            wait_until(lambda: self.proc.poll() is not None or self.log()[offset:].count(" serving ") >= workers,
                       timeout=timeout, what=f"{workers} workers serving")
        while pending:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill9()
                raise RuntimeError(f"server did not open {sorted(pending)}:\n{self.log()}")
            for name in list(pending):
                with socket.socket() as s:
                    s.settimeout(0.2)
                    if s.connect_ex((self.host, self.ports[name])) == 0:
                        pending.discard(name)
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "mailserver", "--config", str(self.config_path), *args],
            capture_output=True, text=True, env=self.env, cwd=self.root, input=input, timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"mailserver {' '.join(args)} → {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def add_account(self, address: str, password: str, name: str = "Nguyễn Văn An") -> None:
        # Test accounts share a default name; they stand for different people (R-BOX-1).
        self.cli("account", "add", name, "--address", address, "--password", password, "--active", "--another-person")

    def open_store(self):
        """The same store in this test process (for bulk loading and checks after a crash)."""
        from mailserver.app import open_store

        return open_store(self.settings)

    def destroy(self) -> None:
        self.stop()
        if self.pg_name:
            _pg_drop(self.pg_name)


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp(f"server-{request.param}"), request.param)
    try:
        srv.start()
        yield srv
    finally:
        srv.destroy()


@pytest.fixture(params=BACKENDS)
def make_server(request, tmp_path_factory):
    """Factory for tests that need their own server (crash tests, special config)."""
    made: list[Server] = []

    def make(extra: dict | None = None, start: bool = True) -> Server:
        srv = Server(tmp_path_factory.mktemp(f"own-{request.param}"), request.param, extra)
        made.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    for srv in made:
        srv.destroy()


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    """A migrated, empty database URL for store-level tests, on each backend."""
    from storage.migrate import upgrade

    name = None
    if request.param == "postgresql":
        name, url = _pg_database()
    else:
        url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    yield url
    if name:
        _pg_drop(name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI a real client that is missing is a failure, not a skip: `.ci/run` installs them."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if "not installed" in reason or "openssl" in reason:
            report.outcome = "failed"
            report.longrepr = f"required tool missing under CI: {reason}"
