"""R-BOX-1: one personal mailbox per staff member — the same name in the same unit is refused
by `account add` unless the operator says it is another person; the rule as a pure function."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailserver.policy.persons import Holder, same_person

pytestmark = pytest.mark.requirement("R-BOX-1")
ROOT = Path(__file__).resolve().parent.parent
EXIT_OK, EXIT_REFUSED = 0, 1


def test_same_folded_name_in_the_same_unit_is_the_same_person():
    holders = [Holder("annv@most.gov.vn", "Nguyễn Văn An", 1), Holder("annv2@most.gov.vn", "Nguyễn Văn An", 2)]
    assert same_person("nguyen  van AN", 1, holders).address == "annv@most.gov.vn"  # case, tones, spaces
    assert same_person("Nguyễn Văn An", 2, holders).address == "annv2@most.gov.vn"
    assert same_person("Nguyễn Văn An", 3, holders) is None  # another unit: another person
    assert same_person("Nguyễn Văn An", None, holders) is None
    assert same_person("Nguyễn Văn Ân", 1, [Holder("x@most.gov.vn", "Trần Văn Ân", 1)]) is None


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAILSERVER_CONFIG", "MAILSERVER_DEBUG")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "mailserver", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_account_add_refuses_a_second_mailbox_for_the_same_person(tmp_path):
    assert run(tmp_path, "init", "--profile", "most").returncode == EXIT_OK
    assert run(tmp_path, "unit", "add", "Văn phòng", "--code", "vp").returncode == EXIT_OK
    assert run(tmp_path, "unit", "add", "Vụ Pháp chế", "--code", "vpc").returncode == EXIT_OK
    first = run(tmp_path, "account", "add", "Nguyễn Văn An", "--unit", "vp")
    assert first.returncode == EXIT_OK, first.stderr
    again = run(tmp_path, "account", "add", "Nguyễn Văn An", "--unit", "vp", "--address", "an.nv@most.gov.vn")
    assert again.returncode == EXIT_REFUSED
    assert "already has a personal mailbox, annv@most.gov.vn" in again.stderr and "--another-person" in again.stderr
    other_unit = run(tmp_path, "account", "add", "Nguyễn Văn An", "--unit", "vpc")
    assert other_unit.returncode == EXIT_OK, other_unit.stderr
    namesake = run(tmp_path, "account", "add", "Nguyễn Văn An", "--unit", "vp", "--another-person")
    assert namesake.returncode == EXIT_OK, namesake.stderr
    assert run(tmp_path, "account", "add", "X", "--unit", "nope").returncode == EXIT_REFUSED
