"""Unit tests of the SMTP front end's pure pieces: replies, paths, trace headers, DATA streaming."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import io
import itertools
import os

import pytest

from smtp import replies
from smtp.address import AddressSyntaxError, parse_path
from smtp.data import HEAD_PREFIX, MAX_LINE, DataState, DotUnstuffer, header_section, read_data
from smtp.received import Trace, protocol_name, trace_headers
from storage.errors import ErrorKind

# -- replies -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, stage, expected",
    [
        (ErrorKind.NOQUOTA, "RCPT", "452 4.2.2"),
        (ErrorKind.NOQUOTA, "DATA", "552 5.2.2"),
        (ErrorKind.TEMP, "DATA", "451 4.3.0"),
        (ErrorKind.TEMP, "RCPT", "451 4.3.0"),
        (ErrorKind.NOTFOUND, "RCPT", "550 5.1.1"),
        (ErrorKind.TOOBIG, "DATA", "552 5.3.4"),
        (ErrorKind.EXISTS, "DATA", "451 4.3.0"),
        ("BOGUS", "DATA", "451 4.3.0"),
    ],
)
def test_store_error_kinds_map_to_one_reply_per_stage(kind, stage, expected):
    assert replies.for_error(kind, stage).startswith(expected + " ")


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("250 OK", "250 2.0.0 OK"),
        ("500 Error: bad syntax", "500 5.5.2 bad syntax"),
        ('500 Error: command "FOO" not recognized', '500 5.5.2 command "FOO" not recognized'),
        ("503 Error: send HELO first", "503 5.5.1 send HELO first"),
        ("221 Bye", "221 2.0.0 Bye"),
        ("220 Ready to start TLS", "220 2.0.0 Ready to start TLS"),
        ("252 Cannot VRFY user", "252 2.5.0 Cannot VRFY user"),
        ("550 5.1.1 No such user here", "550 5.1.1 No such user here"),  # already enhanced
        ("354 End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>"),  # exempt
        ("334 VXNlcm5hbWU6", "334 VXNlcm5hbWU6"),  # AUTH challenge, exempt
        ("214-Help text", "214-2.0.0 Help text"),
    ],
)
def test_enhance_adds_rfc3463_code_to_aiosmtpd_replies(raw, expected):
    assert replies.enhance(raw) == expected


def test_every_named_reply_constant_carries_an_enhanced_code():
    names = [n for n in dir(replies) if n[:1] == "S" and n[1:4].isdigit()]
    assert len(names) > 20
    for name in names:
        value = getattr(replies, name)
        if name.startswith("S354"):
            continue
        assert replies.enhance(value) == value, name
        assert value[:3] == name[1:4], name


# -- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arg, address, params",
    [
        ("FROM:<a@b.vn>", "a@b.vn", {}),
        ("FROM:<>", "", {}),
        ("from: <a@b.vn> SIZE=100 body=8BITMIME", "a@b.vn", {"SIZE": "100", "BODY": "8BITMIME"}),
        ("FROM:a@b.vn", "a@b.vn", {}),
        ('FROM:<"a b"@b.vn>', '"a b"@b.vn', {}),
        ("FROM:<@relay.vn:a@b.vn>", "a@b.vn", {}),
        ("FROM:<nguyễn.văn.an@bộ.gov.vn> SMTPUTF8", "nguyễn.văn.an@bộ.gov.vn", {"SMTPUTF8": True}),
        ("FROM:<a@[192.0.2.1]>", "a@[192.0.2.1]", {}),
    ],
)
def test_parse_path_accepts_rfc5321_paths(arg, address, params):
    path = parse_path(arg, "FROM:", allow_null=True, utf8=True)
    assert (path.address, path.params) == (address, params)


@pytest.mark.parametrize(
    "arg",
    [None, "", "FROM", "TO:<a@b.vn>", "FROM:<a b@c.vn>", "FROM:<a@b.vn", "FROM:garbage<<", "FROM:<a\rb@c.vn>",
     "FROM:<a@b.vn>junk", "FROM:<a@b.vn> =x", "FROM:<a@-b.vn>", "FROM:<a..b@c.vn>", "FROM:<a@b\udcff.vn>"],
)  # fmt: skip
def test_parse_path_refuses_malformed_paths(arg):
    with pytest.raises(AddressSyntaxError):
        parse_path(arg, "FROM:", allow_null=True, utf8=True)


def test_parse_path_refuses_null_recipient_and_utf8_without_smtputf8():
    with pytest.raises(AddressSyntaxError):
        parse_path("TO:<>", "TO:", allow_null=False, utf8=True)
    with pytest.raises(AddressSyntaxError):
        parse_path("TO:<tên@b.vn>", "TO:", allow_null=False, utf8=False)


# -- trace headers -------------------------------------------------------------------------------

WHEN = _dt.datetime(2026, 11, 23, 15, 0, 0, tzinfo=_dt.timezone.utc)


def _trace(**kw) -> Trace:
    base = dict(helo="mx.other.gov.vn", peer_ip="192.0.2.7", peer_name="mx.other.gov.vn", hostname="mail.example.gov.vn",
                protocol="ESMTPS", id="abc123", sender="a@other.gov.vn", recipients=("annv@example.gov.vn",), when=WHEN)  # fmt: skip
    base.update(kw)
    return Trace(**base)


def test_trace_headers_have_return_path_and_received_with_for_single_recipient():
    assert trace_headers(_trace()) == (
        b"Return-Path: <a@other.gov.vn>\r\n"
        b"Received: from mx.other.gov.vn (mx.other.gov.vn [192.0.2.7])\r\n"
        b"\tby mail.example.gov.vn with ESMTPS id abc123\r\n"
        b"\tfor <annv@example.gov.vn>;\r\n"
        b"\tMon, 23 Nov 2026 15:00:00 +0000\r\n"
    )


def test_trace_headers_omit_for_with_several_recipients_so_the_blob_is_shared():
    head = trace_headers(_trace(recipients=("a@example.gov.vn", "b@example.gov.vn"), sender="", peer_name=None))
    assert b"for <" not in head
    assert head.startswith(b"Return-Path: <>\r\nReceived: from mx.other.gov.vn (unknown [192.0.2.7])\r\n")
    assert head.count(b"\r\n") == 4 and b"abc123;\r\n" in head


def test_trace_headers_neutralise_control_characters_and_comment_breakers_in_helo():
    head = trace_headers(_trace(helo="evil\rInjected: yes (x) \\", peer_ip="2001:db8::1"))
    assert b"\rI" not in head and b"Injected: yes (" not in head
    assert b"[IPv6:2001:db8::1]" in head


def test_protocol_name_follows_rfc3848_and_rfc6531():
    assert protocol_name(esmtp=False, tls=False, authenticated=False, utf8=False) == "SMTP"
    assert protocol_name(esmtp=True, tls=False, authenticated=False, utf8=False) == "ESMTP"
    assert protocol_name(esmtp=True, tls=True, authenticated=True, utf8=False) == "ESMTPSA"
    assert protocol_name(esmtp=True, tls=True, authenticated=False, utf8=True) == "UTF8SMTPS"


# -- DATA streaming --------------------------------------------------------------------------------


def _unstuff(raw: bytes, max_size=None, max_line=MAX_LINE) -> tuple[bytes, DotUnstuffer]:
    sink = io.BytesIO()
    u = DotUnstuffer(sink, max_size, max_line)
    u.feed(raw)
    return sink.getvalue(), u


def test_dot_unstuffing_removes_one_leading_dot_per_line_including_the_first():
    out, u = _unstuff(b"..first\r\nplain\r\n..\r\n...x\r\nmid.dle\r\n")
    assert out == b".first\r\nplain\r\n.\r\n..x\r\nmid.dle\r\n"
    assert u.size == len(out) and u.state is DataState.OK


def test_dot_unstuffing_is_the_same_for_every_split_of_the_stream():
    raw = b".a\r\n..b\r\nc.\r\n\r\n.\r\n..\r\n"
    expected, _ = _unstuff(raw)
    for i, j in itertools.combinations(range(len(raw) + 1), 2):
        sink = io.BytesIO()
        u = DotUnstuffer(sink, None)
        for part in (raw[:i], raw[i:j], raw[j:]):
            u.feed(part)
        assert sink.getvalue() == expected, (i, j)


def test_header_section_is_kept_from_the_unstuffed_stream_in_any_split():
    raw = b"Subject: x\r\n..dot: y\r\n\r\nbody\r\n\r\nmore\r\n"
    for i in range(len(raw) + 1):
        u = DotUnstuffer(io.BytesIO(), None)
        u.feed(raw[:i])
        u.feed(raw[i:])
        assert header_section(u.prefix) == b"Subject: x\r\n.dot: y\r\n\r\n", i


def test_header_section_unknown_when_its_end_is_not_in_the_prefix():
    assert header_section(b"Subject: x\r\nno blank line yet") is None
    assert header_section(b"Subject: x\n\nLF only") is None  # the spool reader decides those
    u = DotUnstuffer(io.BytesIO(), None)
    u.feed(b"X-Long: " + b"a" * HEAD_PREFIX + b"\r\n\r\nbody\r\n")
    assert len(u.prefix) == HEAD_PREFIX and header_section(u.prefix) is None


def test_size_limit_stops_writing_but_keeps_counting():
    out, u = _unstuff(b"x" * 50 + b"\r\n", max_size=10)
    assert u.state is DataState.TOO_BIG and u.size == 52 and out == b""


def test_long_lines_are_accepted_up_to_the_cap_across_blocks():
    sink = io.BytesIO()
    u = DotUnstuffer(sink, None, max_line=100)
    for _ in range(9):
        u.feed(b"y" * 10)
    u.feed(b"y" * 8 + b"\r\n")  # exactly 100 bytes with its CRLF
    assert u.state is DataState.OK
    u.feed(b"z" * 60)
    u.feed(b"z" * 50 + b"\r\n")
    assert u.state is DataState.LINE_TOO_LONG


def test_line_over_the_cap_inside_one_block_is_detected():
    _, u = _unstuff(b"short\r\n" + b"q" * 200 + b"\r\nend\r\n", max_line=100)
    assert u.state is DataState.LINE_TOO_LONG


async def _read(chunks: list[bytes], max_size=None, limit=64 * 1024):
    reader = asyncio.StreamReader(limit=limit)
    for c in chunks:
        reader.feed_data(c)
    reader.feed_eof()
    result = await read_data(reader, io.BytesIO, max_size=max_size)
    body = result.spool.read() if result.spool else None
    rest = await reader.read()
    return result, body, rest


MESSAGES = [b"", b"\r\n", b"a\r\n", b".\r\n", b"..\r\n", b"Subject: x\r\n\r\n.body\r\n..\r\nend\r\n", b"\r\n\r\n\r\n"]


@pytest.mark.parametrize("message", MESSAGES)
async def test_read_data_stops_exactly_at_the_terminator_for_every_split(message):
    stuffed = b"".join(b"." + line if line.startswith(b".") else line for line in message.splitlines(keepends=True))
    raw = stuffed + b".\r\nQUIT\r\n"
    for i in range(len(raw) + 1):
        result, body, rest = await _read([raw[:i], raw[i:]])
        assert (result.state, body, rest) == (DataState.OK, message, b"QUIT\r\n"), i


async def test_read_data_streams_blocks_larger_than_the_reader_limit():
    message = b"".join(b"line %06d ....\r\n" % i for i in range(5000))  # ~85 KB
    result, body, rest = await _read([message + b".\r\nNOOP\r\n"], limit=1024)
    assert body == message and rest == b"NOOP\r\n"


async def test_read_data_only_ends_on_crlf_dot_crlf_not_bare_lf():
    raw = b"a\n.\nMAIL FROM:<x@y.vn>\r\nb\r\n.\r\n"
    result, body, rest = await _read([raw])
    # The bare-LF lines are message text (stored with CRLF line ends), not the end of the data.
    assert body == b"a\r\n.\r\nMAIL FROM:<x@y.vn>\r\nb\r\n" and rest == b""


async def test_read_data_over_the_size_limit_reads_to_the_end_and_reports_it():
    result, body, rest = await _read([b"x" * 1000 + b"\r\n.\r\nQUIT\r\n"], max_size=100)
    assert result.state is DataState.TOO_BIG and body is None and rest == b"QUIT\r\n"


def test_spool_stays_in_memory_below_the_threshold_and_goes_to_data_dir_above(tmp_path):
    from smtp.data import spool_factory

    make = spool_factory(tmp_path, threshold=100)
    small, big = make(), make()
    small.write(b"x" * 100)
    big.write(b"x" * 101)
    assert not small._rolled and big._rolled
    assert os.readlink(f"/proc/self/fd/{big.fileno()}").startswith(str(tmp_path))  # on disk, in data_dir
    small.close()
    big.close()
    assert list(tmp_path.iterdir()) == []


# -- pipeline checks -------------------------------------------------------------------------------


async def test_relay_check_trusts_configured_domains_and_asks_the_store_for_others():
    from config.settings import Limits
    from smtp.pipeline import Peer, RcptContext
    from smtp.pipeline.checks import relay
    from tests.fakes import FakeStore
    from storage.errors import Temp

    store = FakeStore(domains={"added-later.gov.vn"}, raise_on_lookup=Temp("must not be asked"))
    peer = Peer(ip="192.0.2.1", helo="x", tls=False, authenticated=False)
    ctx = RcptContext(store, Limits(), peer, domain="example.gov.vn", configured_domains=frozenset({"example.gov.vn"}))
    assert (await relay.check(ctx)).reply is None and ctx.local
    store.raise_on_lookup = None
    ctx = RcptContext(store, Limits(), peer, domain="added-later.gov.vn", configured_domains=frozenset({"example.gov.vn"}))
    assert (await relay.check(ctx)).reply is None and ctx.local
    ctx = RcptContext(store, Limits(), peer, domain="gmail.com", configured_domains=frozenset({"example.gov.vn"}))
    assert (await relay.check(ctx)).reply == replies.S550_RELAY_DENIED
    authenticated = Peer(ip="192.0.2.1", helo="x", tls=True, authenticated=True, account_id=1)
    ctx = RcptContext(store, Limits(), authenticated, domain="gmail.com")
    assert (await relay.check(ctx)).reply == replies.S550_RELAY_DENIED  # no outbound queue: never accepted
    ctx = RcptContext(store, Limits(), dataclasses.replace(authenticated, outbound=True), domain="gmail.com")
    assert (await relay.check(ctx)).reply is None


def test_bare_postmaster_recipient_is_accepted_for_the_first_domain():
    path = parse_path("TO:<Postmaster>", "TO:", allow_null=False, utf8=False, postmaster_domain="example.gov.vn")
    assert path.address == "postmaster@example.gov.vn"
    with pytest.raises(AddressSyntaxError):
        parse_path("TO:<Postmaster>", "TO:", allow_null=False, utf8=False)


def test_bare_lf_line_ends_are_stored_as_crlf_in_any_split():
    """What IMAP and POP3 serve has CRLF lines (RFC 3501 §4.3, RFC 1939): DATA with bare LF is
    stored with CRLF, and the size is that of the stored message."""
    raw = b"Subject: x\nTo: y\r\n\n..dot\r\n..two\nmixed\r\nend\n\r\n"
    # Dots are unstuffed after CRLF only (RFC 5321 §4.5.2), before the line ends are made CRLF.
    expected = b"Subject: x\r\nTo: y\r\n\r\n..dot\r\n.two\r\nmixed\r\nend\r\n\r\n"
    for i, j in itertools.combinations(range(len(raw) + 1), 2):
        sink = io.BytesIO()
        u = DotUnstuffer(sink, None)
        for part in (raw[:i], raw[i:j], raw[j:]):
            u.feed(part)
        assert sink.getvalue() == expected and u.size == len(expected), (i, j)
