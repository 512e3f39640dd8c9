"""Announcements (R-OPS-3): ``announce`` delivers one notice, Vietnamese then English, to every
mailbox that logs in (or one unit's) as one stored body; ``--at`` is delivered by the running
server when due; during an announced maintenance window IMAP logins get ``* OK [ALERT]``.
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import imaplib

from tests.conftest import wait_until

DOMAIN = "example.gov.vn"
PASSWORD = "Mat-khau-2026!"
BODY = "Hệ thống thư sẽ bảo trì từ 22:00 đến 23:00 ngày 20/12.\n\nThe mail system will be down from 22:00 to 23:00 on 20 December.\n"


def _inbox(srv, address: str) -> list[email.message.EmailMessage]:
    c = imaplib.IMAP4(srv.host, srv.port("imap"))
    c.login(address, PASSWORD)
    c.select("INBOX", readonly=True)
    _typ, data = c.search(None, "ALL")
    found = []
    for n in data[0].split():
        _typ, parts = c.fetch(n, "(RFC822)")
        found.append(email.message_from_bytes(parts[0][1], policy=email.policy.default))
    c.logout()
    return found


import pytest


@pytest.mark.requirement("R-OPS-3")
def test_announcement_to_every_mailbox_as_one_body_and_scheduled(make_server, tmp_path):
    srv = make_server({"maintenance": {"windows": [{"start": "2026-01-01T00:00:00+07:00", "end": "2099-01-01T00:00:00+07:00",
                                                    "note_vi": "Nâng cấp ổ đĩa", "note_en": "Disk upgrade"}]}})
    people = [f"nv{i}@{DOMAIN}" for i in range(3)]
    for i, address in enumerate(people):
        srv.cli("account", "add", f"Nhân viên {i}", "--address", address, "--password", PASSWORD, "--active")
    srv.cli("account", "add", "Đã nghỉ", "--address", f"danghi@{DOMAIN}", "--password", PASSWORD, "--active")
    srv.cli("account", "lock", f"danghi@{DOMAIN}", "--no-notify")  # no lock notice: one stored body below
    body = tmp_path / "thong-bao.txt"
    body.write_text(BODY, encoding="utf-8")
    out = srv.cli("announce", "--subject", "Bảo trì hệ thống thư / Mail maintenance", "--body-file", str(body)).stdout
    assert "delivered to 3 mailbox(es), one stored body" in out  # the locked account is left out
    for address in people:
        [notice] = _inbox(srv, address)
        assert str(notice["Subject"]) == "Bảo trì hệ thống thư / Mail maintenance"
        text = notice.get_content()
        assert text.index("bảo trì từ 22:00") < text.index("will be down") and "không trả lời" in text
    store = srv.open_store()
    try:
        with store.core.reading() as conn:
            from sqlalchemy import text as sql

            assert conn.execute(sql("SELECT COUNT(DISTINCT blob_sha) FROM messages")).scalar() == 1
    finally:
        store.close()

    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)).isoformat(timespec="seconds")
    out = srv.cli("announce", "--subject", "Nhắc lại / Reminder", "--body-file", str(body), "--at", soon).stdout
    assert "scheduled for" in out
    wait_until(lambda: len(_inbox(srv, people[0])) == 2, timeout=90, what="the scheduled announcement")
    assert "\tsent\t3\t*\tNhắc lại / Reminder" in srv.cli("announce", "--list").stdout

    c = imaplib.IMAP4(srv.host, srv.port("imap"))
    c.login(people[1], PASSWORD)
    alerts = [line for line in c.untagged_responses.get("OK", []) if b"[ALERT]" in line]
    assert alerts and b"Bao tri he thong thu" in alerts[0] and b"Mail system maintenance" in alerts[0]
    assert b"Nang cap o dia" in alerts[0] and b"Disk upgrade" in alerts[0]
    c.logout()


def test_bad_announcements_are_refused_with_the_reason(make_server, tmp_path):
    srv = make_server(start=False)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Thông báo".encode("utf-16"))
    result = srv.cli("announce", "--subject", "x", "--body-file", str(latin1), check=False)
    assert result.returncode == 2 and "not UTF-8" in result.stderr
    ok = tmp_path / "ok.txt"
    ok.write_text(BODY, encoding="utf-8")
    result = srv.cli("announce", "--subject", "x", "--body-file", str(ok), "--unit", "khong-co", check=False)
    assert result.returncode == 1 and "no unit" in result.stderr
    result = srv.cli("announce", "--subject", "x", "--body-file", str(ok), "--at", "mai", check=False)
    assert result.returncode == 2 and "expected a time" in result.stderr
