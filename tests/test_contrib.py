"""What ships for operators outside the Python package: the hardened systemd unit (checked by
systemd's own ``systemd-analyze verify``), and ``mailserver health``, the Docker image's
HEALTHCHECK, against a running server's /healthz."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "contrib" / "systemd" / "mailserver.service"
REFUSED = 1


def test_systemd_unit_is_valid_and_hardened(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    text = UNIT.read_text(encoding="utf-8")
    settings = dict(re.findall(r"^(\w+)=(.*)$", text, re.M))
    assert settings["User"] == "mailserver" and settings["ProtectSystem"] == "strict"
    assert settings["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE" and settings["Restart"] == "on-failure"
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID" and settings["NoNewPrivileges"] == "true"
    # verify it as installed, with the program where the unit expects it (here: this checkout's)
    program = Path(sys.executable).with_name("mailserver")
    unit = tmp_path / "mailserver.service"
    unit.write_text(text.replace("/opt/mailserver/.venv/bin/mailserver", str(program)), encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "mailserver.service" not in result.stderr, result.stderr


def test_health_command_asks_the_running_server(make_server):
    server = make_server({"listeners": {"web": {"address": "127.0.0.1", "port": free_port()}}})
    result = server.cli("health")
    assert result.stdout.strip().endswith("/healthz: ok")
    server.stop()
    down = server.cli("health", "--timeout", "2", check=False)
    assert down.returncode == REFUSED and "/healthz" in down.stderr and "Traceback" not in down.stderr


def test_dockerfile_checks_health():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r'^HEALTHCHECK .*CMD \["mailserver", "health"', text, re.M)
