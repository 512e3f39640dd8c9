"""mailserver.mailboxes.notices: quota warnings as proper RFC 5322 messages, Vietnamese first, English below."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import re

from mailserver.mailboxes.notices import SENDER_NAME, quota_notice
from storage.mime import parse

MiB, GiB = 1024**2, 1024**3
WHEN = dt.datetime(2026, 11, 23, 8, 30, tzinfo=dt.UTC)


def build(threshold: int = 90, used: int = 1844 * MiB, to_name: str | None = "Nguyễn Văn An") -> bytes:
    return quota_notice(threshold=threshold, used=used, limit=2 * GiB, mailbox="annv@example.gov.vn",
                        to="annv@example.gov.vn", to_name=to_name, domains=("example.gov.vn", "other.gov.vn"),
                        hostname="mail.example.gov.vn", now=WHEN)


def test_headers_are_ascii_with_vietnamese_in_encoded_words():
    raw = build()
    raw.decode("ascii")  # 7-bit clean: safe through any hop without SMTPUTF8
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "Hộp thư đã dùng 90% dung lượng / Mailbox 90% full"
    assert msg["From"].addresses[0].addr_spec == "postmaster@example.gov.vn"
    assert msg["From"].addresses[0].display_name == SENDER_NAME
    assert msg["To"].addresses[0].display_name == "Nguyễn Văn An"
    assert email.utils.parsedate_to_datetime(msg["Date"]) == WHEN
    assert msg["Message-ID"].startswith("<") and msg["Message-ID"].endswith("@mail.example.gov.vn>")
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    # Encoded-words of at most 75 characters (RFC 2047 section 2), folded between words.
    assert all(len(w) <= 75 for w in re.findall(rb"=\?[^?]+\?B\?[^?]*\?=", raw))
    assert all(len(line) <= 90 for line in raw.split(b"\r\n"))


def test_body_says_usage_limit_and_how_to_free_space_vietnamese_first():
    text = email.message_from_bytes(build(), policy=email.policy.default).get_content()
    vi, en = text.index("Hộp thư annv@example.gov.vn"), text.index("The mailbox annv@example.gov.vn")
    assert vi < en
    assert "1,80 GB trên tổng dung lượng 2 GB" in text  # Vietnamese decimal comma
    assert "1.80 GB of 2 GB" in text
    assert "Thùng rác" in text and "empty the Trash and Junk folders" in text


def test_subject_and_body_name_the_same_percentage():
    """83 % used when the 80 % notice goes out: subject and body both say 80 %, no other figure."""
    text_of = lambda raw: email.message_from_bytes(raw, policy=email.policy.default)
    msg = text_of(quota_notice(threshold=80, used=int(0.83 * 2 * GiB), limit=2 * GiB, mailbox="a@example.gov.vn",
                               to="a@example.gov.vn", to_name=None, domains=("example.gov.vn",),
                               hostname="mail.example.gov.vn", now=WHEN))
    assert "80%" in msg["Subject"]
    body = msg.get_content()
    assert set(re.findall(r"(\d+)%", body)) == {"80"}


def test_sizes_in_vietnamese_style():
    from quota.notices import size_en, size_vi

    assert size_vi(int(982.04 * 1024)) == "982,04 KB" and size_en(int(982.04 * 1024)) == "982.04 KB"
    assert size_vi(2 * GiB) == "2 GB" and size_vi(1536 * MiB) == "1,5 GB"


def test_full_mailbox_notice_and_a_name_less_recipient():
    msg = email.message_from_bytes(build(threshold=100, used=2 * GiB, to_name=None), policy=email.policy.default)
    assert msg["Subject"] == "Hộp thư đã đầy / Mailbox full"
    assert msg["To"] == "annv@example.gov.vn"


def test_the_store_parser_reads_the_envelope():
    meta = parse(build())
    assert meta["envelope"]["from"][0]["mailbox"] == "postmaster"
    assert meta["search"]["subject"] == "Hộp thư đã dùng 90% dung lượng / Mailbox 90% full"
