"""DKIM signing (smtp/dkim.py), inbound verification and SPF recorded in Authentication-Results
(smtp/authresults.py, smtp/spf.py), the static Resolver, routes and the small pure helpers of
the outbound worker. DNS answers are fixed: no test touches the network."""

from __future__ import annotations

import io

import dkim
import pytest

from smtp.authresults import authentication_results
from smtp.dkim import DkimSigner, from_domain, generate_key, header_names
from smtp.outbound.dns import DnsTempError, NXDomain, Resolver
from smtp.outbound.dsn import status_of
from smtp.outbound.route import NoRoute, next_hops, parse_route, route_for
from smtp.outbound.service import backoff, strip_return_path
from smtp.spf import check_spf

pytestmark = pytest.mark.requirement("R-SEC-2")

MSG = (
    b"From: =?utf-8?b?Tmd1eeG7hW4gVsSDbiBBbg==?= <an@example.gov.vn>\r\nTo: bob@other.gov.vn\r\n"
    b"Subject: Xin chao\r\nDate: Mon, 23 Nov 2026 10:00:00 +0700\r\nMessage-ID: <1@example.gov.vn>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nN\xe1\xbb\x99i dung.\r\n"
)


@pytest.fixture
def signer(tmp_path):
    _path, txt = generate_key(tmp_path, "example.gov.vn", "mail")
    signer = DkimSigner(tmp_path, ["example.gov.vn", "sub.example.gov.vn"])
    signer.txt = txt
    return signer


def resolver_for(signer, **extra) -> Resolver:
    static = {"mail._domainkey.example.gov.vn": {"txt": [signer.txt]},
              "example.gov.vn": {"txt": ["v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"]}}  # fmt: skip
    static.update(extra)
    return Resolver(static, static_only=True)


def keys_of(signer):
    return lambda name, timeout=5: {b"mail._domainkey.example.gov.vn.": signer.txt.encode()}.get(name)


def test_signature_is_relaxed_over_the_recommended_headers_with_from_oversigned(signer):
    signed = signer.sign(MSG)
    assert signed.endswith(MSG) and signed.startswith(b"DKIM-Signature: ")
    tags = signed[: signed.index(b"From:")].decode()
    assert "c=relaxed/relaxed" in tags and "d=example.gov.vn" in tags and "s=mail" in tags
    h = tags.split("h=")[1].split(";")[0].replace("\r\n", "").replace(" ", "")
    assert h.split(":") == ["from", "subject", "date", "to", "message-id", "mime-version", "content-type", "from"]
    assert dkim.verify(signed, dnsfunc=keys_of(signer))
    # relaxed/relaxed: refolding and whitespace changes on the way keep it valid
    refolded = signed.replace(b"Subject: Xin chao", b"Subject:   Xin\r\n  chao")
    assert dkim.verify(refolded, dnsfunc=keys_of(signer))
    # From is oversigned: a second From added later breaks the signature
    added = signed.replace(b"To: bob", b"From: evil@example.org\r\nTo: bob")
    assert not dkim.verify(added, dnsfunc=keys_of(signer))


def test_foreign_or_keyless_domains_go_out_unsigned(signer, tmp_path):
    foreign = MSG.replace(b"an@example.gov.vn", b"an@elsewhere.vn")
    assert signer.sign(foreign) == foreign
    keyless = MSG.replace(b"an@example.gov.vn", b"an@sub.example.gov.vn")
    assert signer.sign(keyless) == keyless  # local domain without a key file
    off = DkimSigner(tmp_path, ["example.gov.vn"], enabled=False)
    assert off.sign(MSG) == MSG


def test_key_rotation_uses_the_configured_selector_and_refuses_to_overwrite(tmp_path):
    generate_key(tmp_path, "example.gov.vn", "mail")
    _p, txt2 = generate_key(tmp_path, "example.gov.vn", "s2026")
    with pytest.raises(FileExistsError):
        generate_key(tmp_path, "example.gov.vn", "s2026")
    signer = DkimSigner(tmp_path, ["example.gov.vn"], selectors={"example.gov.vn": "s2026"})
    signed = signer.sign(MSG)
    assert b"s=s2026" in signed
    assert dkim.verify(signed, dnsfunc=lambda n, timeout=5: {b"s2026._domainkey.example.gov.vn.": txt2.encode()}.get(n))


def test_header_helpers():
    assert header_names(b"From: a\r\nX-A:\r\n b\r\nsubject: c\r\n\r\nFrom: body\r\n") == ["from", "x-a", "subject"]
    assert from_domain(b"From: \"A, B\" <x@Example.Gov.VN>\r\n\r\n") == "example.gov.vn"
    assert from_domain(b"Subject: none\r\n\r\n") is None


async def test_authentication_results_dkim_pass_and_spf_pass(signer):
    header = await authentication_results(
        b"Received: from x\r\n" + signer.sign(MSG), "192.0.2.7", "mail.example.gov.vn", "an@example.gov.vn",
        resolver_for(signer), authserv_id="mail.other.gov.vn",
    )  # fmt: skip
    text = header.decode()
    assert text.startswith("Authentication-Results: mail.other.gov.vn;\r\n\tdkim=pass header.d=example.gov.vn header.s=mail header.b=\"")
    assert text.endswith("\tspf=pass smtp.mailfrom=an@example.gov.vn\r\n")


async def test_tampered_body_fails_dkim_and_wrong_ip_fails_spf(signer):
    tampered = signer.sign(MSG).replace("Nội".encode(), "Noi".encode())
    text = (await authentication_results(tampered, "198.51.100.1", "h", "an@example.gov.vn", resolver_for(signer),
                                         authserv_id="mx")).decode()  # fmt: skip
    assert "dkim=fail (body hash mismatch)" in text and "spf=fail smtp.mailfrom=an@example.gov.vn" in text


async def test_missing_key_is_permerror_and_dns_trouble_is_temperror(signer):
    signed = signer.sign(MSG)
    no_key = Resolver({"example.gov.vn": {"txt": []}}, static_only=True)
    text = (await authentication_results(signed, "192.0.2.7", "h", "", no_key, authserv_id="mx")).decode()
    assert "dkim=permerror (no key) header.d=example.gov.vn" in text and "spf=none smtp.helo=h" in text

    class Broken(Resolver):
        async def txt(self, name):
            raise DnsTempError(name)

    text = (await authentication_results(signed, "192.0.2.7", "h", "an@example.gov.vn", Broken(), authserv_id="mx")).decode()
    assert "dkim=temperror" in text and "spf=temperror" in text


async def test_unsigned_message_from_a_file_is_dkim_none_and_the_file_is_rewound(signer):
    f = io.BytesIO(MSG)
    text = (await authentication_results(f, "2001:db8::1", "h", "an@example.gov.vn", resolver_for(signer), authserv_id="mx")).decode()
    assert "dkim=none;" in text and "spf=pass" in text and f.tell() == 0


@pytest.mark.parametrize("record,ip,expected", [
    ("v=spf1 -all", "192.0.2.1", "fail"),
    ("v=spf1 ~all", "192.0.2.1", "softfail"),
    ("v=spf1 ?all", "192.0.2.1", "neutral"),
    ("v=spf1 ip4:192.0.2.0/25 -all", "192.0.2.200", "fail"),
    ("v=spf1 a -all", "192.0.2.10", "pass"),
    ("v=spf1 a/24 -all", "192.0.2.99", "pass"),
    ("v=spf1 mx -all", "198.51.100.5", "pass"),
    ("v=spf1 include:inc.vn -all", "203.0.113.9", "pass"),
    ("v=spf1 include:none.vn -all", "203.0.113.9", "permerror"),
    ("v=spf1 redirect=inc.vn", "203.0.113.9", "pass"),
    ("v=spf1 exists:%{ir}.%{v}.list.vn -all", "192.0.2.10", "pass"),
    ("v=spf1 foo:bar -all", "192.0.2.1", "permerror"),
    ("v=spf1 " + " ".join(f"a:n{i}.vn" for i in range(11)) + " -all", "192.0.2.1", "permerror"),
    ("v=spf1 ip6:2001:db8::/32 -all", "2001:db8::5", "pass"),
    ("v=spf1", "192.0.2.1", "neutral"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)  # fmt: skip
async def test_spf_evaluation(record, ip, expected):
    resolver = Resolver({
        "d.vn": {"txt": [record, "unrelated text"], "a": ["192.0.2.10"], "mx": ["10 mx.d.vn"]},
        "mx.d.vn": {"a": ["198.51.100.5"]},
        "inc.vn": {"txt": ["v=spf1 ip4:203.0.113.0/24 -all"]},
        "none.vn": {},
        "10.2.0.192.in-addr.list.vn": {"a": ["127.0.0.2"]},
        **{f"n{i}.vn": {"a": ["10.0.0.1"]} for i in range(11)},
    }, static_only=True)  # fmt: skip
    assert (await check_spf(ip, "user@d.vn", "helo.d.vn", resolver)).result == expected


async def test_static_resolver_semantics():
    r = Resolver({"x.vn": {"mx": ["20 b.x.vn", "10 a.x.vn"], "a": ["2001:db8::1", "192.0.2.1"]}}, static_only=True)
    assert await r.mx("X.VN.") == [(10, "a.x.vn"), (20, "b.x.vn")]
    assert await r.a("x.vn") == ["192.0.2.1", "2001:db8::1"]
    assert await r.txt("x.vn") == []
    with pytest.raises(NXDomain):
        await r.mx("unknown.vn")


async def test_routes_win_over_mx_and_errors_are_classified():
    routes = {"other.gov.vn": "10.1.2.3:2525", "v6.vn": "[2001:db8::25]:25", "*": "relay.example.gov.vn"}
    assert parse_route("relay:587") == ("relay", 587) and parse_route("2001:db8::1") == ("2001:db8::1", 25)
    assert route_for("OTHER.gov.vn.", routes) == ("10.1.2.3", 2525) and route_for("x.vn", routes) == ("relay.example.gov.vn", 25)
    r = Resolver({"relay.example.gov.vn": {"a": ["192.0.2.25"]}, "nomail.vn": {"mx": ["0 ."]}}, static_only=True)
    assert [str(h) for h in await next_hops("other.gov.vn", routes, r)] == ["10.1.2.3:2525"]
    assert [str(h) for h in await next_hops("v6.vn", routes, r)] == ["[2001:db8::25]:25"]
    assert [h.address for h in await next_hops("anything.vn", routes, r)] == ["192.0.2.25"]
    with pytest.raises(NoRoute) as e:
        await next_hops("nomail.vn", {}, r)
    assert e.value.status == "5.1.10"
    with pytest.raises(DnsTempError):
        await next_hops("x.vn", {"*": "missing.vn:25"}, r)  # a broken route keeps the mail


def test_back_off_doubles_from_5_minutes_up_to_4_hours():
    assert [backoff(n, 300, 14400) for n in range(1, 9)] == [300, 600, 1200, 2400, 4800, 9600, 14400, 14400]


def test_return_path_is_never_sent_on():
    assert strip_return_path(b"Return-Path: <a@b>\r\nReceived: x\r\n\r\nbody") == b"Received: x\r\n\r\nbody"
    assert strip_return_path(b"Received: x\r\nReturn-Path: <a@b>\r\n\r\n") == b"Received: x\r\nReturn-Path: <a@b>\r\n\r\n"


def test_dsn_status_from_replies():
    assert status_of(550, "5.1.1 no such user") == "5.1.1"
    assert status_of(550, "no such user") == "5.0.0"
    assert status_of(550, "4.1.1 inconsistent") == "5.0.0"
    assert status_of(451, "try later", expired=True) == "4.4.7"
