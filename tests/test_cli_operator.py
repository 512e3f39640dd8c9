"""The operator's first steps on the command line: names checked before init writes anything
(IDNA accepted), a port in use named by its listener, output piped to a closed reader, the
version, and a destructive command that asks or needs --yes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_REFUSED = 0, 1


def run(cwd: Path, *args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAILSERVER_CONFIG", "MAILSERVER_DEBUG")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "mailserver", *args], cwd=cwd, env=env, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=120)


@pytest.mark.parametrize("domain, why", [
    ("bad domain", "is not a domain name"),
    ("a" * 64 + ".gov.vn", "longer than 63 characters"),
    ("-x.gov.vn", "is not a domain name"),
])
def test_init_refuses_a_bad_domain_and_writes_nothing(tmp_path, domain, why):
    result = run(tmp_path, "init", "--domain", domain)
    assert result.returncode == EXIT_REFUSED and why in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_accepts_an_internationalised_domain_by_its_idna_form(tmp_path):
    result = run(tmp_path, "init", "--domain", "Bộ-Tư-Pháp.vn")
    assert result.returncode == EXIT_OK, result.stderr
    assert "domains: [xn--b-t-php-mwa37p164l.vn]" in (tmp_path / "data" / "mailserver.yaml").read_text("utf-8")
    check = run(tmp_path, "config", "check")
    assert check.returncode == EXIT_OK, check.stderr


def test_config_check_names_the_bad_domain(tmp_path):
    assert run(tmp_path, "init").returncode == EXIT_OK
    result = run(tmp_path, "--set", "domains=[bad domain]", "config", "check")
    assert result.returncode == EXIT_REFUSED
    assert "domains" in result.stderr and "'bad domain' is not a domain name" in result.stderr


def test_a_port_in_use_names_the_listener_and_address(tmp_path):
    assert run(tmp_path, "init").returncode == EXIT_OK
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = run(tmp_path, "--set", f"listeners.imap.port={port}", "serve")
    assert result.returncode == EXIT_REFUSED
    assert f"imap: 127.0.0.1:{port} is already in use" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_output_to_a_closed_pipe_prints_no_broken_pipe(tmp_path):
    assert run(tmp_path, "init").returncode == EXIT_OK
    for args in (("compliance",), ("account", "list"), ("--help",)):
        read, write = os.pipe()
        os.close(read)  # the reader (`| head`) has already gone
        try:
            result = run(tmp_path, *args, stdout=write)
        finally:
            os.close(write)
        assert "BrokenPipeError" not in result.stderr and "Traceback" not in result.stderr, args


def test_version(tmp_path):
    result = run(tmp_path, "--version")
    assert result.returncode == EXIT_OK and result.stdout.startswith("mailserver ")
