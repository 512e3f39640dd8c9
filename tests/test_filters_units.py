"""Pure parts of the content filters: DMARC (RFC 7489) policy and alignment, spam thresholds,
milter header edits and replies, clamd replies, configuration; and the milter and clamd clients
against scripted peers for what the real daemons cannot be made to do on demand."""

from __future__ import annotations

import asyncio
import struct

import pytest
from pydantic import ValidationError

from config.filters import Milter, RoleAddresses, Spamd
from config.settings import Settings
from smtp.filters import dmarc
from smtp.filters.clamd import ClamdError, parse_reply
from smtp.filters.headers import Edit, apply, split_fields
from smtp.filters.milter import Envelope, MilterClient, MilterError, packet, reply_text
from smtp.filters.policy import spam_action, spam_headers, unscanned_header
from smtp.filters.spamd import SpamResult
from smtp.outbound.dns import DnsTempError, Resolver


@pytest.mark.parametrize("txt, expected", [
    ("v=DMARC1; p=reject", dmarc.Record("reject", "reject")),
    ("v=DMARC1;p=quarantine;sp=none;adkim=s;aspf=s;pct=20", dmarc.Record("quarantine", "none", "s", "s", 20)),
    ("v=DMARC1; p=none; rua=mailto:d@x.vn", dmarc.Record("none", "none")),
    ("v=DMARC1; p=bogus; rua=mailto:d@x.vn", dmarc.Record("none", "none")),  # 6.6.3 step 6
    ("v=DMARC1; p=bogus", None),
    ("v=spf1 -all", None),
    ("v=DMARC1; p=reject; pct=abc; adkim=x", dmarc.Record("reject", "reject", "r", "r", 100)),
])  # fmt: skip
def test_dmarc_record_parsing(txt, expected):
    assert dmarc.parse_record(txt) == expected


@pytest.mark.parametrize("a, b, mode, ok", [
    ("mail.bo.gov.vn", "bo.gov.vn", "r", True),
    ("mail.bo.gov.vn", "bo.gov.vn", "s", False),
    ("BO.gov.vn.", "bo.gov.vn", "s", True),
    ("a.com.vn", "b.com.vn", "r", False),  # com.vn is a public suffix
    ("bo.gov.vn", "other.gov.vn", "r", False),
    ("x.example.com", "y.example.com", "r", True),
])  # fmt: skip
def test_dmarc_alignment(a, b, mode, ok):
    assert dmarc.aligned(a, b, mode) is ok


REJECT = dmarc.Record("reject", "quarantine")


@pytest.mark.parametrize("domain, record, spf, spf_domain, dkim, sample, result, policy", [
    ("bo.gov.vn", REJECT, "pass", "bo.gov.vn", [], 0.0, "pass", "none"),
    ("bo.gov.vn", REJECT, "pass", "bounce.bo.gov.vn", [], 0.0, "pass", "none"),  # relaxed
    ("bo.gov.vn", dmarc.Record("reject", "reject", aspf="s"), "pass", "bounce.bo.gov.vn", [], 0.0, "fail", "reject"),
    ("bo.gov.vn", REJECT, "pass", "evil.vn", [], 0.0, "fail", "reject"),  # SPF passes but for another domain
    ("bo.gov.vn", REJECT, "fail", "bo.gov.vn", ["bo.gov.vn"], 0.0, "pass", "none"),  # aligned DKIM alone
    ("bo.gov.vn", REJECT, "softfail", "bo.gov.vn", ["evil.vn"], 0.0, "fail", "reject"),
    ("mail.bo.gov.vn", REJECT, "fail", "x.vn", [], 0.0, "fail", "quarantine"),  # sp= for a subdomain
    ("bo.gov.vn", dmarc.Record("reject", "reject", pct=50), "fail", "x.vn", [], 0.7, "fail", "quarantine"),
    ("bo.gov.vn", dmarc.Record("quarantine", "quarantine", pct=50), "fail", "x.vn", [], 0.7, "fail", "none"),
    ("bo.gov.vn", dmarc.Record("reject", "reject", pct=50), "fail", "x.vn", [], 0.3, "fail", "reject"),
])  # fmt: skip
def test_dmarc_evaluate(domain, record, spf, spf_domain, dkim, sample, result, policy):
    got = dmarc.evaluate(domain, record, spf=spf, spf_domain=spf_domain, dkim_pass_domains=dkim, sample=sample)
    assert (got.result, got.policy) == (result, policy)


@pytest.mark.parametrize("head, domain", [
    (b"From: =?utf-8?b?QW4=?= <an@Bo.Gov.VN>\r\nTo: x@y.vn\r\n\r\n", "bo.gov.vn"),
    (b"Subject: x\r\nfrom:\r\n an@bo.gov.vn\r\n\r\n", "bo.gov.vn"),
    (b"From: a@x.vn\r\nFrom: b@y.vn\r\n\r\n", None),  # two From fields
    (b"From: a@x.vn, b@y.vn\r\n\r\n", None),  # two authors
    (b"Subject: no author\r\n\r\n", None),
])  # fmt: skip
def test_dmarc_from_domain(head, domain):
    assert dmarc.from_domain(head) == domain


async def test_dmarc_lookup_falls_back_to_the_organizational_domain_and_reports_dns_trouble():
    r = Resolver({"_dmarc.bo.gov.vn": {"txt": ["v=DMARC1; p=reject; sp=quarantine"]}}, static_only=True)
    head = b"From: an@mail.bo.gov.vn\r\n\r\n"
    got = await dmarc.check(head, r, spf="fail", spf_domain="x.vn", dkim_pass_domains=[], sample=0.0)
    assert (got.result, got.policy, got.domain) == ("fail", "quarantine", "mail.bo.gov.vn")
    none = await dmarc.check(b"From: a@other.vn\r\n\r\n", r, spf="fail", spf_domain="", dkim_pass_domains=[], sample=0)
    assert none.result == "none"
    two = Resolver({"_dmarc.two.vn": {"txt": ["v=DMARC1; p=reject", "v=DMARC1; p=none"]}}, static_only=True)
    assert (await dmarc.check(b"From: a@two.vn\r\n\r\n", two, spf="fail", spf_domain="", dkim_pass_domains=[],
                              sample=0)).result == "none"  # fmt: skip

    class Down(Resolver):
        async def txt(self, name):
            raise DnsTempError(name)

    assert (await dmarc.check(head, Down(), spf="pass", spf_domain="x.vn", dkim_pass_domains=[], sample=0)).result == "temperror"


@pytest.mark.parametrize("score, action", [(0, "deliver"), (4.9, "deliver"), (5, "junk"), (14.9, "junk"), (15, "reject"), (1000, "reject")])
def test_spam_thresholds(score, action):
    assert spam_action(score, 5.0, 15.0) == action
    assert spam_action(score, None, None) == "deliver"


def test_spam_and_unscanned_headers_are_safe_ascii():
    h = spam_headers(SpamResult(7.25, 5.0, ("LOCAL\r\nX-Evil: 1", "GTUBE")), "mail.example.gov.vn")
    assert b"X-Spam-Flag: YES\r\n" in h and b"score=7.2 required=5.0" in h and b"X-Evil:" not in h.replace(b"LOCALX-Evil", b"")
    assert h.count(b"\r\n") == 5
    assert unscanned_header("clamd", "TimeoutError\r\nX: y") == b"X-Filter-Unscanned: clamd (TimeoutErrorX y)\r\n"


def test_config_validates_thresholds_roles_and_milter_names():
    with pytest.raises(ValidationError):
        Spamd(junk_score=10, reject_score=5)
    with pytest.raises(ValidationError):
        Milter(name="bad name", port=1)
    with pytest.raises(ValidationError):
        Settings(role_addresses={"postmaster": "not-an-address"})
    roles = RoleAddresses(postmaster="Ops@Example.gov.vn")
    assert roles.target("PostMaster") == "ops@example.gov.vn" and roles.target("abuse") is None and roles.target("an") is None


HEAD = b"Received: x\r\nSubject: a\r\n b\r\nX-Virus-Status: Clean\r\nX-Virus-Status: Clean2\r\n\r\n"


@pytest.mark.parametrize("edits, expected", [
    ([Edit("add", "X-A", "1")], HEAD[:-2] + b"X-A: 1\r\n\r\n"),
    ([Edit("insert", "X-A", "1", 0)], b"X-A: 1\r\n" + HEAD),
    ([Edit("insert", "X-A", "1", 1)], b"Received: x\r\nX-A: 1\r\n" + HEAD[13:]),
    ([Edit("change", "X-Virus-Status", "Infected", 2)], HEAD.replace(b"Clean2", b"Infected")),
    ([Edit("change", "X-Virus-Status", "", 1)], HEAD.replace(b"X-Virus-Status: Clean\r\n", b"", 1)),
    ([Edit("change", "X-New", "v", 1)], HEAD[:-2] + b"X-New: v\r\n\r\n"),  # absent: added
    ([Edit("add", "X-Multi", "a\nb")], HEAD[:-2] + b"X-Multi: a\r\n\tb\r\n\r\n"),  # a continuation line is folded
])  # fmt: skip
def test_header_edits(edits, expected):
    assert split_fields(HEAD)[1] == b"Subject: a\r\n b\r\n"
    assert apply(split_fields(HEAD), edits) == expected


def test_replies_of_clamd_and_milter():
    assert parse_reply(b"stream: OK\0") is None
    assert parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\0") == "Win.Test.EICAR_HDB-1"
    with pytest.raises(ClamdError):
        parse_reply(b"INSTREAM size limit exceeded. ERROR\0")
    assert reply_text(b"550 5.7.1 Go away\0") == "550 5.7.1 Go away"
    assert reply_text(b"250 ok\0") is None and reply_text(b"550 a\r\nb\0") is None


ENV = Envelope("192.0.2.1", "", "mx.other.vn", "a@other.vn", ("b@example.gov.vn",), "mail.example.gov.vn", "id1")


async def scripted_milter(replies: dict[bytes, bytes], optneg: bytes = struct.pack("!III", 6, 0x31, 0)):
    """A milter that answers each command with ``replies`` (default continue); records what it got."""
    seen: list[bytes] = []

    async def serve(reader, writer):
        try:
            while True:
                size = struct.unpack("!I", await reader.readexactly(4))[0]
                body = await reader.readexactly(size)
                cmd = body[:1]
                seen.append(cmd)
                if cmd == b"O":
                    writer.write(packet(b"O", optneg))
                elif cmd == b"D":
                    continue
                elif cmd == b"Q":
                    break
                else:
                    writer.write(replies.get(cmd, packet(b"c")))
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


@pytest.mark.parametrize("replies, action, reply, quarantine", [
    ({b"E": packet(b"y", b"554 5.7.0 Policy says no\0")}, "reject", "554 5.7.0 Policy says no", None),
    ({b"R": packet(b"t")}, "tempfail", None, None),
    ({b"M": packet(b"a")}, "accept", None, None),
    ({b"E": packet(b"q", b"looks odd\0") + packet(b"a")}, "accept", None, "looks odd"),
    ({b"E": packet(b"d")}, "accept", None, "m asked to discard"),  # discard is never silent here
])  # fmt: skip
async def test_milter_dispositions(replies, action, reply, quarantine):
    server, port, seen = await scripted_milter(replies)
    async with server:
        got = await MilterClient(Milter(name="m", port=port, timeout=5)).check(ENV, b"Subject: x\r\n\r\n", b"body\r\n")
    assert (got.action, got.reply, got.quarantine) == (action, reply, quarantine)
    if action == "accept" and b"M" in replies:
        assert b"R" not in seen  # accept ends the conversation


async def test_milter_skips_steps_it_is_told_to_and_rejects_unoffered_protocol_bits():
    no_body_no_hdrs = struct.pack("!III", 6, 0x01, 0x10 | 0x20 | 0x80)
    server, port, seen = await scripted_milter({b"E": packet(b"h", b"X-A\0v\0") + packet(b"c")}, no_body_no_hdrs)
    async with server:
        got = await MilterClient(Milter(name="m", port=port, timeout=5)).check(ENV, b"Subject: x\r\n\r\n", b"body\r\n")
    assert b"B" not in seen and b"L" not in seen and got.edits == [Edit("add", "X-A", "v")]
    server, port, _ = await scripted_milter({}, struct.pack("!III", 6, 0x01, 0x100000))  # HDR_LEADSPC: not offered
    async with server:
        with pytest.raises(MilterError):
            await MilterClient(Milter(name="m", port=port, timeout=5)).check(ENV, b"Subject: x\r\n\r\n", b"")


def test_spamd_replies():
    from smtp.filters.spamd import SpamdError, parse_reply as spamd_reply, request

    got = spamd_reply(b"SPAMD/1.1 0 EX_OK\r\nContent-length: 14\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nGTUBE,OTHER_1\r\n")
    assert got == SpamResult(1000.0, 5.0, ("GTUBE", "OTHER_1"))
    assert spamd_reply(b"SPAMD/1.5 0 EX_OK\r\nSpam: False ; -0.5 / 5.0\r\n\r\n") == SpamResult(-0.5, 5.0, ())
    for bad in (b"SPAMD/1.0 76 Bad header line: (EOF)\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n", b"", b"SPAMD/1.1 0 EX_OK\r\n\r\n"):
        with pytest.raises(SpamdError):
            spamd_reply(bad)
    assert b"".join(request(b"abc")) == b"SYMBOLS SPAMC/1.5\r\nContent-length: 3\r\n\r\nabc"
