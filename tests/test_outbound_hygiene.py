"""Submission header hygiene (smtp/outbound/hygiene.py): Bcc removed, Date and Message-ID added
when missing, every other byte kept (signed mail stays valid)."""

from __future__ import annotations

import datetime as _dt
import io

from smtp.outbound.hygiene import clean_header, read_header

NOW = _dt.datetime(2026, 11, 23, 3, 0, tzinfo=_dt.UTC)


def test_complete_header_is_returned_untouched():
    head = b"From: a@x.vn\r\nDate: Mon, 23 Nov 2026 10:00:00 +0700\r\nMessage-ID: <1@x.vn>\r\n\r\n"
    assert clean_header(head, hostname="mail.x.vn", now=NOW) is head


def test_bcc_with_continuation_lines_is_removed_and_the_rest_kept_byte_for_byte():
    head = (b"From: a@x.vn\r\nBcc: secret@y.vn,\r\n\tother@z.vn\r\nSubject:  =?utf-8?b?eGlu?=\r\n"
            b"Date: x\r\nMessage-ID: <1@x>\r\n\r\n")
    assert clean_header(head, hostname="h", now=NOW) == (
        b"From: a@x.vn\r\nSubject:  =?utf-8?b?eGlu?=\r\nDate: x\r\nMessage-ID: <1@x>\r\n\r\n")


def test_missing_date_and_message_id_are_added_at_the_end():
    out = clean_header(b"From: a@x.vn\r\nSubject: s\r\n\r\n", hostname="mail.x.vn", now=NOW)
    assert out.startswith(b"From: a@x.vn\r\nSubject: s\r\nDate: Mon, 23 Nov 2026 03:00:00 +0000\r\nMessage-ID: <")
    assert out.endswith(b"@mail.x.vn>\r\n\r\n")


def test_read_header_finds_the_body_offset_and_rewinds():
    spool = io.BytesIO(b"From: a\r\nBcc: b\r\n\r\nbody\r\n\r\nmore\r\n")
    head, at = read_header(spool)
    assert head == b"From: a\r\nBcc: b\r\n\r\n" and at == len(head) and spool.tell() == 0
    assert read_header(io.BytesIO(b"\r\nbody only\r\n")) == (b"", 0)
