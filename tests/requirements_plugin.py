"""The ``requirement`` marker (R-… of docs/requirements.md) and the rule that gives it teeth.

``@pytest.mark.requirement("R-QUOTA-1")`` says a test proves a requirement. At collection an
unknown ID is an error, and when the whole suite is collected, a requirement that some profile
enforces (mailserver/compliance/requirements.yaml) with no marked test fails the run.
tests/test_requirements_matrix.py checks the same by reading the test files, so that a partial
run (one file, ``-k``) still says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailserver.compliance.matrix import load

TESTS = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requirement(*ids): the test proves these requirements (R-… of docs/requirements.md)")


def _whole_suite(config: pytest.Config) -> bool:
    args = [a.split("::")[0] for a in config.args]
    return bool(args) and all(Path(config.invocation_params.dir, a).resolve() == TESTS for a in args)


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect: what the suite holds, not what this run picked
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    matrix = load()
    known = matrix.ids()
    proven: set[str] = set()
    for item in items:
        for mark in item.iter_markers("requirement"):
            if not mark.args:
                raise pytest.UsageError(f"{item.nodeid}: requirement() needs at least one R-… id")
            for rid in mark.args:
                if rid not in known:
                    raise pytest.UsageError(f"{item.nodeid}: unknown requirement {rid!r} (not in requirements.yaml)")
                proven.add(rid)
    missing = sorted(matrix.enforced_ids() - proven)
    if missing and _whole_suite(config):
        raise pytest.UsageError(
            "requirements enforced by a profile but proven by no test marked "
            f"@pytest.mark.requirement(...): {', '.join(missing)}")
