"""The Sieve interpreter (sieve/): what a script decides for a message (RFC 5228 and the
extensions fileinto, envelope, imap4flags, vacation, reject, body, variables, date, relational)."""

from __future__ import annotations

import datetime as _dt

import pytest

from sieve.interpret import RuntimeScriptError, evaluate
from sieve.message import Envelope, MessageView
from sieve.script import ScriptError, compile_script, unquote
from sieve.vacation import build_reply, handle, may_reply

ICT = _dt.timezone(_dt.timedelta(hours=7))
NOW = _dt.datetime(2026, 12, 7, 9, 30, tzinfo=ICT)

MESSAGE = (
    "Return-Path: <an@other.gov.vn>\r\n"
    "From: =?utf-8?b?TmfhuqV5w6puIFbEg24gQW4=?= <an@other.gov.vn>\r\n"
    "To: binh@example.gov.vn, Team <team@example.gov.vn>\r\n"
    "Subject: =?utf-8?q?B=C3=A1o_c=C3=A1o_th=C3=A1ng_12?=\r\n"
    "Date: Mon, 07 Dec 2026 08:15:00 +0700\r\n"
    "Message-ID: <m1@other.gov.vn>\r\n"
    "Received: from a\r\nReceived: from b\r\nReceived: from c\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\n"
    "Kính gửi anh Bình, số tiền tạm ứng là 5 triệu.\r\n"
).encode()


def run(script: str, raw: bytes = MESSAGE, sender: str = "an@other.gov.vn", rcpt: str = "binh@example.gov.vn"):
    return evaluate(compile_script(script), MessageView(raw, len(raw)), Envelope(sender, rcpt), NOW)


def test_no_action_keeps_in_inbox():
    assert run("# nothing\n").deliveries == [("INBOX", frozenset())]


def test_fileinto_cancels_implicit_keep_and_copy_does_not():
    assert run('require "fileinto"; fileinto "Reports";').deliveries == [("Reports", frozenset())]
    r = run('require ["fileinto","copy"]; fileinto :copy "Reports";')
    assert r.deliveries == [("Reports", frozenset()), ("INBOX", frozenset())]


def test_header_contains_decodes_encoded_words_vietnamese():
    r = run('require "fileinto"; if header :contains "subject" "Báo cáo" { fileinto "BC"; }')
    assert r.deliveries == [("BC", frozenset())]


def test_header_in_raw_utf8_rfc6532():
    raw = "Subject: thư rác\r\n\r\nx".encode()
    assert run('if header :contains "subject" "rác" { discard; }', raw).discarded


def test_address_domain_and_envelope_localpart():
    r = run('require ["fileinto","envelope"]; if allof(address :domain :is "from" "OTHER.gov.vn",'
            ' envelope :localpart :is "to" "binh") { fileinto "Other"; }')
    assert r.deliveries == [("Other", frozenset())]
    assert run('require "envelope"; if envelope :is "from" "x@y.vn" { discard; }').deliveries == [("INBOX", frozenset())]


def test_body_text_is_decoded():
    assert run('require "body"; if body :text :contains "tiền tạm ứng" { discard; }').discarded
    assert not run('require "body"; if body :contains "không có" { discard; }').discarded


def test_imap4flags_and_keep_with_flags():
    r = run('require ["imap4flags","fileinto"]; addflag "\\\\Flagged"; addflag ["$Work", "x"]; removeflag "x";'
            ' fileinto "A"; keep :flags "\\\\Seen";')
    assert r.deliveries == [("A", frozenset({"\\Flagged", "$Work"})), ("INBOX", frozenset({"\\Seen"}))]


def test_variables_matches_captures_and_modifiers():
    r = run('require ["fileinto","variables"]; if header :matches "to" "*@*" { set :upperfirst "who" "${1}"; '
            'fileinto "Cho/${who}"; }')
    assert r.deliveries == [("Cho/Binh", frozenset())]


def test_relational_count_and_numeric_value():
    assert run('require "relational"; if header :count "ge" "received" "3" { discard; }').discarded
    assert not run('require "relational"; if header :count "gt" "received" "3" { discard; }').discarded
    script = ('require ["relational","comparator-i;ascii-numeric"]; '
              'if header :value "gt" :comparator "i;ascii-numeric" "x-priority" "2" { discard; }')
    assert run(script, b"X-Priority: 10\r\n\r\nx").discarded
    assert not run(script, b"X-Priority: 1\r\n\r\nx").discarded


def test_date_and_currentdate():
    assert run('require ["date","relational"]; if currentdate :value "ge" "hour" "09" { discard; }').discarded
    assert run('require "date"; if date :zone "+0000" "date" "hour" "01" { discard; }').discarded
    assert run('require "date"; if date :originalzone "date" "zone" "+0700" { discard; }').discarded
    assert run('require "date"; if currentdate "weekday" "1" { discard; }').discarded  # 7 Dec 2026 is a Monday


def test_size_exists_stop():
    assert run('if size :over 100 { discard; stop; } keep;').discarded
    assert not run('if exists ["x-spam", "subject"] { discard; }').discarded


def test_reject_and_discard_cancel_keep():
    r = run('require "reject"; reject "Không nhận thư này";')
    assert r.reject == "Không nhận thư này" and r.deliveries == []
    with pytest.raises(RuntimeScriptError):
        run('require ["reject","fileinto"]; fileinto "X"; reject "no";')


def test_redirect_and_limit():
    r = run('redirect "chanh@example.gov.vn";')
    assert r.redirects == ["chanh@example.gov.vn"] and r.deliveries == []
    assert run('require "copy"; redirect :copy "a@b.vn";').deliveries == [("INBOX", frozenset())]
    with pytest.raises(RuntimeScriptError):
        run("".join(f'redirect "a{i}@b.vn";' for i in range(6)))


def test_compile_errors_name_the_line_and_unknown_extensions():
    with pytest.raises(ScriptError, match="line 2"):
        compile_script('keep;\nfoo "x";')
    with pytest.raises(ScriptError, match="unsupported extension"):
        compile_script('require "enotify";')
    with pytest.raises(ScriptError):
        compile_script('fileinto "X";')  # not required


def test_multiline_text_unquoted_and_dot_unstuffed():
    assert unquote('text:\nTôi nghỉ phép\n..\n.') == "Tôi nghỉ phép\n.\n"
    assert unquote('"a\\"b\\\\c"') == 'a"b\\c'


def test_vacation_action_days_and_reply():
    r = run('require "vacation"; vacation :days 3 :subject "Nghỉ phép" "Tôi nghỉ đến 15/12.";')
    assert r.vacation.seconds == 3 * 86400 and r.vacation.subject == "Nghỉ phép"
    view = MessageView(MESSAGE, len(MESSAGE))
    raw = build_reply(r.vacation, view, sender="an@other.gov.vn", user="binh@example.gov.vn", hostname="mx", now=NOW)
    assert b"Auto-Submitted: auto-replied" in raw and b"In-Reply-To: <m1@other.gov.vn>" in raw
    assert handle(r.vacation) == handle(r.vacation) and handle(r.vacation).startswith("auto-")


@pytest.mark.parametrize("extra, sender, why", [
    ("", "", "null sender"),
    ("", "mailer-daemon@other.gov.vn", "automated sender"),
    ("", "owner-list@other.gov.vn", "automated sender"),
    ("Auto-Submitted: auto-replied\r\n", "an@other.gov.vn", "Auto-Submitted"),
    ("Precedence: bulk\r\n", "an@other.gov.vn", "Precedence"),
    ("List-Id: <x.lists.vn>\r\n", "an@other.gov.vn", "mailing list"),
    ("", "binh@example.gov.vn", "sent by the user"),
])  # fmt: skip
def test_vacation_never_replies_to_lists_bulk_automatic(extra, sender, why):
    raw = extra.encode() + MESSAGE
    assert may_reply(MessageView(raw, len(raw)), sender, {"binh@example.gov.vn"}) == (False, why)


def test_vacation_replies_only_when_user_named():
    view = MessageView(MESSAGE, len(MESSAGE))
    assert may_reply(view, "an@other.gov.vn", {"binh@example.gov.vn"}) == (True, "")
    assert may_reply(view, "an@other.gov.vn", {"khac@example.gov.vn"})[0] is False


def test_comparators_ascii_casemap_folds_only_ascii_unicode_casemap_all():
    raw = "Subject: ĐƠN XIN nghỉ\r\n\r\nx".encode()
    assert run('if header :contains "subject" "xin" { discard; }', raw).discarded
    assert not run('if header :contains "subject" "đơn" { discard; }', raw).discarded  # RFC 4790: ASCII only
    assert run('require "comparator-i;unicode-casemap"; if header :comparator "i;unicode-casemap" :contains '
               '"subject" "đơn" { discard; }', raw).discarded
    assert run('if header :matches "subject" "*xin N?H*" { discard; }', raw).discarded
