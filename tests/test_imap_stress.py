"""State-tracking stress test: 10 clients on one mailbox, random SELECT/FETCH/STORE with
keywords/EXPUNGE/APPEND/COPY/MOVE/IDLE/NOOP, every untagged reply checked against each
session's model of the mailbox (tests/stress_workload.py says what is checked). 5 s in the
normal run; ``MAILSERVER_STRESS_SECONDS=20`` for the long one."""

from __future__ import annotations

import itertools
import os
import re

import pytest

from tests import stress_workload
from tests.test_imap_e2e import PASSWORD

SECONDS = float(os.environ.get("MAILSERVER_STRESS_SECONDS", "5"))


_ids = itertools.count(1)


@pytest.fixture
def stress_user(server):
    address = f"stress{next(_ids)}@{server.domain}"
    server.add_account(address, PASSWORD, name="Stress")
    return address


def test_ten_clients_on_one_mailbox_see_a_consistent_mailbox(server, stress_user):
    host, port = server.host, server.port("imap")
    stress_workload.DEBUG = bool(os.environ.get("MAILSERVER_STRESS_DEBUG"))  # the lines behind an error
    stress_workload.prepare(host, port, stress_user, PASSWORD)
    shared = stress_workload.run(host, port, stress_user, PASSWORD, clients=10, seconds=SECONDS)
    assert shared.errors == [], "\n".join(shared.errors[:30])
    assert shared.ops > 10 * SECONDS  # the clients did work (a few per second each, under load)


def test_silent_store_still_tells_another_sessions_change_to_the_message(server, stress_user):
    """Found by the stress run: STORE .SILENT answers nothing, and another session's change
    folded into the same message was never told to this client (RFC 3501 §7.4.2)."""
    from tests.test_imap_e2e import Raw

    a, b = Raw(server), Raw(server)
    for r in (a, b):
        r.login(stress_user)
    b.send(b"ap APPEND INBOX {%d}\r\n" % len(stress_workload.MSG))
    assert b.read_until(b"\r\n").startswith(b"+")
    b.send(stress_workload.MSG + b"\r\n")
    assert b"ap OK" in b._tagged(b"ap")
    a.cmd(b"a1 SELECT INBOX", b"a1")
    b.cmd(b"b1 SELECT INBOX", b"b1")
    assert b"b2 OK" in b.cmd(b"b2 STORE 1 +FLAGS ($FromB)", b"b2")
    told = a.cmd(b"a2 STORE 1 +FLAGS.SILENT (\\Seen)", b"a2") + a.cmd(b"a3 NOOP", b"a3")
    assert re.search(rb"\* 1 FETCH \([^)]*FLAGS \([^)]*\$FromB", told), told
    a.close()
    b.close()
