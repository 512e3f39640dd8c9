"""Differential IMAP conformance: every script in tests/imapdiff/corpus runs, over raw sockets,
against our server (the suite's ``server`` fixture: SQLite, and PostgreSQL when configured) and
against a private Dovecot 2.3 (tests/imapdiff/dovecot.py); the normalised transcripts must be
equal except where a script records the difference (tests/imapdiff/script.py).

A script recording a ``! bug`` (our server is wrong) is a strict expected failure raising
KnownBug: any other difference in it still fails, and once the bug is fixed the test passes and
strict xfail turns that into a failure, asking to remove the annotation.

Run: .venv/bin/pytest -q -p no:xdist tests/test_imap_differential.py
Print a transcript: IMAPDIFF_SHOW=<script> ... -s
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.imapdiff import runner
from tests.imapdiff.dovecot import DOVECOT, Dovecot
from tests.imapdiff.script import parse

CORPUS = Path(__file__).parent / "imapdiff" / "corpus"
PASSWORD = "Diff-pass-2024x"
SCRIPTS = sorted(CORPUS.glob("*.imap"))


def _params():
    out = []
    for path in SCRIPTS:
        script = parse(path)
        marks = []
        if script.bugs:
            reason = "our server differs (bug): " + "; ".join(sorted({b.reason for b in script.bugs}))
            marks.append(pytest.mark.xfail(strict=True, raises=runner.KnownBug, reason=reason))
        out.append(pytest.param(path, marks=marks, id=path.stem))
    return out


@pytest.fixture(scope="session")
def dovecot():
    if DOVECOT is None:
        pytest.skip("dovecot (Debian package dovecot-imapd) not installed")
    d = Dovecot(free_port())
    try:
        d.start()
        yield d
    finally:
        d.destroy()


def _account(server, dovecot, name: str) -> str:
    address = f"diff-{name}-{uuid.uuid4().hex[:6]}@{server.domain}"
    server.add_account(address, PASSWORD)
    dovecot.add_user(address, PASSWORD)
    return address


@pytest.mark.parametrize("path", _params())
def test_script(path, server, dovecot):
    script = parse(path)
    address = _account(server, dovecot, script.name)
    ours = runner.run(script, server.host, server.port("imap"), address, PASSWORD)
    dove = runner.run(script, dovecot.host, dovecot.port, address, PASSWORD)
    if os.environ.get("IMAPDIFF_SHOW") in (script.name, "all"):
        print(f"\n===== ours ({server.backend}) =====\n{runner.render(ours)}\n===== dovecot =====\n{runner.render(dove)}")
    runner.compare(script, ours, dove)


def test_capability_report(server, dovecot):
    """Not a conformance check: lists the capabilities Dovecot advertises and we do not (and the
    reverse), after LOGIN, for the record."""
    from tests.imapdiff.client import RawClient

    address = _account(server, dovecot, "caps")
    caps = {}
    for name, port in (("ours", server.port("imap")), ("dovecot", dovecot.port)):
        c = RawClient(server.host, port)
        c.command(b"a", [b'a LOGIN "%s" "%s"\r\n' % (address.encode(), PASSWORD.encode())])
        got = c.command(b"b", [b"b CAPABILITY\r\n"])
        c.close()
        caps[name] = set(got[0].split()[2:])
    only_dove = sorted(x.decode() for x in caps["dovecot"] - caps["ours"])
    only_ours = sorted(x.decode() for x in caps["ours"] - caps["dovecot"])
    print(f"\ncapabilities Dovecot has and we lack: {' '.join(only_dove)}\nonly ours: {' '.join(only_ours)}")
    assert caps["ours"] and caps["dovecot"]
