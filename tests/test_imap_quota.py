"""QUOTA (RFC 9208) over real sockets: GETQUOTAROOT from imaplib, GETQUOTA, SETQUOTA refused,
and [OVERQUOTA] on APPEND and COPY with nothing partial stored."""

from __future__ import annotations

import imaplib

import pytest

from tests.test_imap_extensions import Session

PASSWORD = "Quota-pass-2024"
LIMIT = 5000  # bytes: STORAGE limit 4 (units of 1024, rounded down)
MESSAGE = b"Subject: big\r\n\r\n" + b"x" * 2000 + b"\r\n"


@pytest.fixture
def small(make_server):
    srv = make_server({"quota": {"mailbox": LIMIT, "thresholds": []}})  # no warning notices in INBOX
    srv.add_account(f"quota@{srv.domain}", PASSWORD, name="Hạn mức")
    return srv


def test_quota_capabilities_and_getquotaroot_from_imaplib(small):
    m = imaplib.IMAP4(small.host, small.port("imap"), timeout=10)
    m.login(f"quota@{small.domain}", PASSWORD)
    caps = m.capabilities
    assert "QUOTA" in caps and "QUOTA=RES-STORAGE" in caps
    assert "QUOTA=RES-MESSAGE" not in caps  # no message-count limit is configured
    m.append("INBOX", None, None, MESSAGE)
    typ, data = m.getquotaroot("INBOX")
    assert typ == "OK"
    roots, quotas = data
    assert roots == [b'"INBOX" ""']
    assert quotas == [b'"" (STORAGE 2 4)']  # 2020 bytes used, rounded up; 5000 // 1024
    typ, data = m.getquota('""')
    assert typ == "OK" and data == [b'"" (STORAGE 2 4)']
    typ, data = m.getquota('"nothing"')
    assert typ == "NO"
    m.logout()


def test_setquota_is_refused_with_noperm(small):
    s = Session(small)
    s.ok(f'LOGIN "quota@{small.domain}" "{PASSWORD}"')
    _, status = s.run('SETQUOTA "" (STORAGE 999999)')
    assert status.startswith(b"NO [NOPERM]")
    s.close()


def test_overquota_on_append_and_copy_stores_nothing(small):
    s = Session(small)
    s.ok(f'LOGIN "quota@{small.domain}" "{PASSWORD}"')
    for _ in range(2):  # 4040 bytes of 5000
        _, status = s.run(b"APPEND INBOX {%d+}\r\n%s" % (len(MESSAGE), MESSAGE))
        assert status.startswith(b"OK [APPENDUID"), status
    _, status = s.run(b"APPEND INBOX {%d+}\r\n%s" % (len(MESSAGE), MESSAGE))
    assert status.startswith(b"NO [OVERQUOTA]"), status
    assert s.ok("STATUS INBOX (MESSAGES)")[0].endswith(b"(MESSAGES 2)")
    s.ok("SELECT INBOX")
    _, status = s.run("COPY 1:2 Trash")
    assert status.startswith(b"NO [OVERQUOTA]"), status
    assert s.ok("STATUS Trash (MESSAGES)")[0].endswith(b"(MESSAGES 0)")  # not one of the two
    _, status = s.run("UID COPY 1:* Junk")
    assert status.startswith(b"NO [OVERQUOTA]"), status
    assert s.ok("STATUS Junk (MESSAGES)")[0].endswith(b"(MESSAGES 0)")
    s.close()
