"""Downgrading a UTF-8 (RFC 6532) header for a next hop without SMTPUTF8 (R-TEXT-1):
every field decodes back to the NFC text, ASCII fields stay byte for byte, UTF-8 local parts and
identifiers refuse."""

from __future__ import annotations

import email
import email.policy
import unicodedata

import pytest

from storage.mime.downgrade import NotDowngradable, downgrade, needs_utf8


def _parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def _msg(*fields: str, body: str = "Nội dung.\r\n") -> bytes:
    return ("\r\n".join(fields) + "\r\n\r\n" + body).encode("utf-8")


def test_ascii_message_is_returned_unchanged():
    raw = _msg("From: a@b.vn", "Subject: hello")
    assert not needs_utf8(raw) and downgrade(raw) is raw


def test_each_field_decodes_back_to_the_nfc_text_and_the_header_is_ascii():
    nfd = unicodedata.normalize("NFD", "Công văn số 12 về việc chuyển đổi số năm 2026, gửi các đơn vị trực thuộc")
    raw = _msg(
        "Received: from a.vn by mail.example.gov.vn; Mon, 23 Nov 2026 10:00:00 +0700",
        "From: Nguyễn Văn An <an@example.gov.vn>",
        'To: "Trần Thị, Bình" <binh@bộ-tài-chính.vn>, plain@x.vn, Phòng Tổ chức: a@b.vn, c@d.vn;',
        f"Subject: {nfd}",
        "X-Ghi-Chu: =?UTF-8?B?w4E=?= và thêm",
        'Content-Type: text/plain; charset=utf-8; name="Tờ trình số 06.pdf"',
    )
    out = downgrade(raw)
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.isascii() and body == "Nội dung.\r\n".encode()
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    assert head.startswith(b"Received: from a.vn by mail.example.gov.vn; Mon")  # ASCII: byte for byte
    msg = _parse(out)
    assert str(msg["Subject"]) == unicodedata.normalize("NFC", nfd)
    assert str(msg["From"]) == "Nguyễn Văn An <an@example.gov.vn>"
    to = msg["To"]
    assert [a.display_name for a in to.addresses] == ["Trần Thị, Bình", "", "", ""]
    assert [a.domain for a in to.addresses][0] == "xn--b-ti-chnh-s1a1mq349a.vn"
    assert to.groups[2].display_name == "Phòng Tổ chức"
    assert str(msg["X-Ghi-Chu"]) == "Á và thêm"
    assert msg.get_param("name") == "Tờ trình số 06.pdf"


@pytest.mark.parametrize("field", [
    "From: bình@example.gov.vn",
    "To: Bình <bình@x.vn>",
    "Message-ID: <tờ-trình@example.gov.vn>",
])  # fmt: skip
def test_a_field_without_an_ascii_form_refuses(field):
    with pytest.raises(NotDowngradable):
        downgrade(_msg("Subject: x", field))


def test_mime_part_headers_are_downgraded_and_bodies_kept():
    raw = (
        "From: a@example.gov.vn\r\nSubject: hello\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nNội dung.\r\n--XX\r\n"
        'Content-Type: application/pdf; name="Tờ trình số 06.pdf"\r\n'
        'Content-Disposition: attachment; filename="Tờ trình số 06.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--XX--\r\n"
    ).encode("utf-8")
    assert needs_utf8(raw)
    out = downgrade(raw)
    assert "Nội dung.".encode() in out and not needs_utf8(out)
    attachment = [p for p in _parse(out).iter_attachments()][0]
    assert attachment.get_filename() == "Tờ trình số 06.pdf" and attachment.get_content() == b"%PDF-"
    assert not needs_utf8(raw.replace("Tờ trình số 06".encode(), b"To trinh so 06"))
