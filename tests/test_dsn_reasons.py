"""Delivery notices as a mail user reads them: the reason by class in plain Vietnamese then
English, the remote server's reply quoted only when it gave one, never a raw exception or an
internal relay's address, the original's subject and date named, Remote-MTA a host name."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest

from smtp.outbound import dsn
from smtp.outbound.reasons import explain, remote_host

pytestmark = pytest.mark.requirement("R-PROTO-2")
NOW = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC)
RAW_ERROR = "SMTPConnectError: Error connecting to 127.0.0.1 on port 4999: [Errno 111] Connection refused"


@pytest.mark.parametrize("status, diagnostic, vi, en, quoted", [
    ("4.4.7", RAW_ERROR, "không kết nối được tới máy chủ nhận thư", "could not be reached", False),
    ("4.0.0", RAW_ERROR, "không kết nối được tới máy chủ nhận thư", "could not be reached", False),
    ("5.1.1", "550 5.1.1 <b@other.gov.vn>: no such user", "địa chỉ người nhận không tồn tại", "does not exist", True),
    ("5.2.2", "552 5.2.2 mailbox full", "hộp thư người nhận đã đầy", "mailbox is full", True),
    ("4.2.2", "452 4.2.2 over quota", "hộp thư người nhận đã đầy", "mailbox is full", True),
    ("5.7.1", "550 5.7.1 spam detected", "thư rác", "as spam", True),
    ("5.1.2", None, "tên miền của người nhận không tồn tại", "domain does not exist", False),
])
def test_each_class_of_failure_has_its_own_plain_reason(status, diagnostic, vi, en, quoted):
    reason = explain(status, diagnostic)
    assert vi in reason.vi and en in reason.en
    assert (reason.quote is not None) == quoted
    assert "Error" not in reason.vi + reason.en and "127.0.0.1" not in reason.vi + reason.en


def test_remote_mta_is_a_host_name_never_a_bare_address():
    assert remote_host("mx.other.gov.vn[10.0.0.5]:25") == "mx.other.gov.vn"
    assert remote_host("127.0.0.1:4999") is None
    assert remote_host("[::1]:25") is None
    assert remote_host(None) is None


def notice(reports) -> tuple[str, str]:
    raw = dsn.build_dsn(hostname="mail.most.gov.vn", sender="annv@most.gov.vn", action=dsn.FAILED, reports=reports,
                        original_headers="Subject: =?utf-8?b?Q8O0bmcgdsSDbiBz4buRIDE=?=\r\n"
                                         "Date: Mon, 7 Dec 2026 10:00:00 +0700".encode(),
                        arrival=NOW, now=NOW)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = list(msg.iter_parts())
    return parts[0].get_content(), raw.decode("utf-8")


def test_a_notice_names_the_original_and_hides_the_relay():
    text, raw = notice([
        dsn.RecipientReport("a@other.gov.vn", dsn.FAILED, "4.4.7", RAW_ERROR, "127.0.0.1:4999", NOW),
        dsn.RecipientReport("b@other.gov.vn", dsn.FAILED, "5.1.1", "550 5.1.1 no such user", "mx.other.gov.vn[10.0.0.5]:25", NOW),
    ])
    assert 'Thư: "Công văn số 1", gửi lúc' in text and 'Message: "Công văn số 1", sent' in text
    assert text.index("địa chỉ người nhận không tồn tại") < text.index("the address does not exist")
    assert "Máy chủ nhận trả lời: 550 5.1.1 no such user" in text
    assert "The receiving server replied: 550 5.1.1 no such user" in text
    for leak in ("SMTPConnectError", "127.0.0.1", "4999", "Errno", "10.0.0.5"):
        assert leak not in raw, leak
    assert "Remote-MTA: dns; mx.other.gov.vn" in raw
    assert raw.count("Remote-MTA:") == 1  # none for the bare relay address
