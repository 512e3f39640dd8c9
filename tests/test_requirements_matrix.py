"""The requirements matrix (mailserver/compliance/requirements.yaml): docs/requirements.md is its
rendering, every requirement a profile enforces has a marked test, and each profile's entries
carry that profile's values (R-QUOTA-1 1 GiB for hcm-q4, 2 GiB for lamdong…)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mailserver.compliance.matrix import REGULATED, MatrixError, load, parse, profile_settings, setting_value
from mailserver.compliance.render import DOC, render

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
#: Every ID of the digest of the five regulations: the matrix must hold exactly these.
ALL_IDS = {
    *(f"R-PROTO-{i}" for i in (1, 2, 3)), *(f"R-BOX-{i}" for i in (1, 2, 3, 4)),
    *(f"R-ADDR-{i}" for i in (1, 2, 3, 4)), "R-QUOTA-1", "R-QUOTA-2", *(f"R-PASS-{i}" for i in (1, 2, 3, 4)),
    "R-ACC-1", "R-ACC-2", *(f"R-LIFE-{i}" for i in (1, 2, 3, 4, 5)), "R-DIR-1", "R-TEXT-1",
    *(f"R-SEC-{i}" for i in (1, 2, 3, 4)), *(f"R-OPS-{i}" for i in (1, 2, 3)),
}
MARK = re.compile(r"mark\.requirement\(([^)]*)\)")


def marked_ids() -> set[str]:
    found: set[str] = set()
    for path in TESTS.glob("test_*.py"):
        for args in MARK.findall(path.read_text(encoding="utf-8")):
            found.update(re.findall(r"R-[A-Z]+-\d+", args))
    return found


def test_the_matrix_holds_every_requirement_once():
    assert load().ids() == ALL_IDS


def test_requirements_md_is_rendered_from_the_matrix():
    assert DOC.read_text(encoding="utf-8") == render(load()), (
        "docs/requirements.md is out of date: run python -m mailserver.compliance.render")


def test_every_enforced_requirement_has_a_marked_test():
    missing = load().enforced_ids() - marked_ids()
    assert not missing, f"enforced but no test marked @pytest.mark.requirement: {sorted(missing)}"


def test_every_regulated_profile_gets_an_entry_for_every_requirement():
    matrix = load()
    for profile in REGULATED:
        for req in matrix.requirements:
            entry = req.entry(profile)
            assert entry.kind in ("enforced", "duty", "not-applicable")
            if entry.kind == "not-applicable":
                assert entry.why


def test_profile_values_are_the_profiles_own():
    quota = load().get("R-QUOTA-1")
    assert quota.entry("hcm-q4").kind == "enforced"
    assert setting_value(profile_settings("hcm-q4"), "quota.mailbox") == 1024**3  # art. 4.2
    assert setting_value(profile_settings("lamdong"), "quota.attachment") == 20 * 1024**2  # art. 6
    assert quota.entry("molisa").kind == "not-applicable"  # Decision 935 sets no capacity
    assert load().get("R-PASS-4").entry("most").kind == "duty"  # no period named
    assert load().get("R-SEC-3").entry("moj").kind == "duty"


@pytest.mark.parametrize("bad, message", [
    ({"kind": "sometimes"}, "kind must be one of"),
    ({"kind": "enforced", "settings": ["quota.mailboxes"]}, "does not exist"),
    ({"kind": "not-applicable"}, "needs a why"),
    ({"kind": "enforced", "colour": "red"}, "unknown keys"),
])
def test_a_malformed_matrix_is_refused_naming_the_requirement(bad, message):
    data = {"regulations": {}, "requirements": [{"id": "R-X-1", "area": "A", "status": "s", "how": "h", **bad}]}
    with pytest.raises(MatrixError, match=message):
        parse(data)


def _run_pytest(tmp_path: Path, test_source: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.requirements_plugin"]\n', encoding="utf-8")
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(test_source), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-c", "/dev/null", "--rootdir", str(tmp_path), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_an_unknown_requirement_id_stops_the_run_at_collection(tmp_path):
    result = _run_pytest(tmp_path, """
        import pytest
        @pytest.mark.requirement("R-NOPE-9")
        def test_x():
            pass
    """, "test_sample.py")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "unknown requirement 'R-NOPE-9'" in result.stdout + result.stderr


def test_the_whole_suite_fails_when_an_enforced_requirement_has_no_test(tmp_path):
    (tmp_path / "tests").mkdir()
    result = _run_pytest(tmp_path, """
        import pytest
        @pytest.mark.requirement("R-QUOTA-1")
        def test_x():
            pass
    """, str(TESTS / "test_requirements_matrix.py"), "--collect-only")
    assert result.returncode == pytest.ExitCode.OK  # one file: the static test above says it
    whole = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider",
                            "-p", "no:xdist", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert whole.returncode == pytest.ExitCode.OK  # not this suite's tests directory: no claim on it
