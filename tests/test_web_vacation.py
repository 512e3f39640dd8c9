"""The portal's out-of-office page (mailserver/web/vacation.py, RFC 5230) over real HTTPS: the
user proves identity with the password, the reply is then sent once to a sender over real SMTP,
and turned off again; refusals in Vietnamese and English. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as _dt
import imaplib
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request

import pytest

from mailserver.web.vacation import vacation_script
from sieve.interpret import evaluate
from sieve.message import Envelope, MessageView
from sieve.script import compile_script
from tests.conftest import free_port, wait_until

PASSWORD = "Mk-nghi-phep-2026!"


@pytest.fixture
def portal(make_server):
    server = make_server({"listeners": {"web": {"address": "127.0.0.1", "port": free_port()}}})
    for who in ("binh", "khach"):
        server.add_account(f"{who}@{server.domain}", PASSWORD)
    return server


def post(server, **fields) -> tuple[int, str]:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the self-signed certificate
    url = f"https://127.0.0.1:{server.settings.listeners.web.port}/vacation"
    try:
        with urllib.request.urlopen(url, data=urllib.parse.urlencode(fields).encode(), context=ctx, timeout=30) as r:
            return r.status, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8")


def auto_replies(server, address: str) -> int:
    with imaplib.IMAP4(server.host, server.port("imap"), timeout=30) as imap:
        imap.login(address, PASSWORD)
        imap.select("INBOX", readonly=True)
        return len(imap.search(None, "HEADER", "Auto-Submitted", "auto-replied")[1][0].split())


def send(server, subject: str) -> None:
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=30) as smtp:
        smtp.sendmail(f"khach@{server.domain}", [f"binh@{server.domain}"],
                      f"From: khach@{server.domain}\r\nTo: binh@{server.domain}\r\nSubject: {subject}\r\n\r\nx\r\n".encode())


def test_vacation_set_on_the_portal_replies_once_then_is_turned_off(portal):
    binh = f"binh@{portal.domain}"
    status, body = post(portal, address=binh, password="sai", enabled="on", reason="Tôi nghỉ.", days="3")
    assert status == 403 and "không đúng" in body and "Wrong address or password" in body
    status, body = post(portal, address=binh, password=PASSWORD, enabled="on", subject="Vắng mặt",
                        reason="Tôi nghỉ phép đến thứ Hai.\nXin liên hệ chị Lan.", days="3")
    assert status == 200 and "Đã bật trả lời tự động" in body
    send(portal, "hop giao ban")
    wait_until(lambda: auto_replies(portal, f"khach@{portal.domain}") == 1, what="one vacation reply")
    send(portal, "hop giao ban 2")
    status, body = post(portal, address=binh, password=PASSWORD, enabled="off")
    assert status == 200 and "Đã tắt" in body
    assert auto_replies(portal, f"khach@{portal.domain}") == 1  # once per sender per 3 days


def test_bad_days_and_empty_reply_are_refused_with_the_reason(portal):
    status, body = post(portal, address=f"binh@{portal.domain}", password=PASSWORD, enabled="on", reason="", days="99")
    assert status == 400 and "Số ngày phải từ 1 đến 30" in body and "Please write the reply" in body


def test_generated_script_runs_until_the_date_and_quotes_user_text():
    text = vacation_script('Nghỉ "phép"', 'C:\\thư mục "x"', 3, _dt.date(2026, 12, 10))
    raw = b"From: a@b.vn\r\nTo: c@d.vn\r\n\r\nx"
    ict = _dt.timezone(_dt.timedelta(hours=7))
    before = evaluate(compile_script(text), MessageView(raw, len(raw)), Envelope("a@b.vn", "c@d.vn"),
                      _dt.datetime(2026, 12, 10, 23, 0, tzinfo=ict))
    after = evaluate(compile_script(text), MessageView(raw, len(raw)), Envelope("a@b.vn", "c@d.vn"),
                     _dt.datetime(2026, 12, 11, 0, 1, tzinfo=ict))
    assert before.vacation.reason == 'C:\\thư mục "x"' and before.vacation.subject == 'Nghỉ "phép"'
    assert after.vacation is None
