"""DKIM signing by OpenSSL over dkimpy's canonicalisation (smtp/dkim_sign.py), Ed25519 keys and
records (RFC 8463, smtp/dkim_keys.py), the selector settings, and the once-per-message memo of
the outbound worker (smtp/outbound/memo.py). dkimpy verifies everything independently."""

from __future__ import annotations

import base64
import re
import threading

import dkim
import pytest
from pydantic import ValidationError

from config.settings import Dkim
from smtp.dkim import DkimSigner
from smtp.dkim_keys import generate_key, load_key, txt_record_for
from smtp.dkim_sign import Prepared, signature_field
from smtp.outbound.memo import OnceCache

pytestmark = pytest.mark.requirement("R-SEC-2")

MSG = (
    b"From: =?utf-8?b?Tmd1eeG7hW4gVsSDbiBBbg==?= <an@example.gov.vn>\r\nTo: bob@other.gov.vn\r\n"
    b"Subject:  Xin   chao\r\n\tfolded\r\nDate: Mon, 23 Nov 2026 10:00:00 +0700\r\n"
    b"Message-ID: <1@example.gov.vn>\r\n\r\nN\xe1\xbb\x99i dung.  \r\n\r\n\r\n"
)
INCLUDE = [b"from", b"subject", b"date", b"to", b"message-id", b"from"]


def dns_for(**records: str):
    table = {f"{sel}._domainkey.example.gov.vn.".encode(): txt.encode() for sel, txt in records.items()}
    return lambda name, timeout=5: table.get(name)


def test_rsa_field_is_byte_for_byte_what_dkimpy_signs(tmp_path):
    """Same parse, canonicalisation, tags and folding as dkim.sign; PKCS#1 v1.5 is deterministic,
    so only the arithmetic moved to OpenSSL."""
    path, txt = generate_key(tmp_path, "example.gov.vn", "mail")
    reference = dkim.sign(MSG, b"mail", b"example.gov.vn", path.read_bytes(), canonicalize=(b"relaxed", b"relaxed"),
                          include_headers=INCLUDE)  # fmt: skip
    t = int(re.search(rb"t=(\d+);", reference).group(1))
    ours = signature_field(Prepared(MSG), load_key(path), b"mail", b"example.gov.vn", INCLUDE, timestamp=t)
    assert ours == reference
    assert dkim.verify(ours + MSG, dnsfunc=dns_for(mail=txt))


def test_from_must_be_signed(tmp_path):
    path, _txt = generate_key(tmp_path, "example.gov.vn", "mail")
    with pytest.raises(ValueError):
        signature_field(Prepared(MSG), load_key(path), b"mail", b"example.gov.vn", [b"subject"])


def test_ed25519_key_record_and_signature_verify_with_dkimpy(tmp_path):
    path, txt = generate_key(tmp_path, "example.gov.vn", "ed", kind="ed25519")
    assert path.stat().st_mode & 0o777 == 0o600
    assert txt.startswith("v=DKIM1; k=ed25519; p=") and len(base64.b64decode(txt.split("p=")[1])) == 32  # RFC 8463 4.2
    assert txt_record_for(path) == txt
    field = signature_field(Prepared(MSG), load_key(path), b"ed", b"example.gov.vn", INCLUDE)
    assert b"a=ed25519-sha256;" in field and b"c=relaxed/relaxed;" in field
    assert dkim.verify(field + MSG, dnsfunc=dns_for(ed=txt))
    assert not dkim.verify(field + MSG.replace(b"dung", b"dunG"), dnsfunc=dns_for(ed=txt))
    other = generate_key(tmp_path, "example.gov.vn", "ed2", kind="ed25519")[1]
    assert not dkim.verify(field + MSG, dnsfunc=dns_for(ed=other))  # not the published key


def test_signer_adds_ed25519_below_rsa_when_its_key_exists_and_both_verify(tmp_path):
    _p, rsa_txt = generate_key(tmp_path, "example.gov.vn", "mail")
    signer = DkimSigner(tmp_path, ["example.gov.vn"])
    assert signer.sign(MSG).count(b"DKIM-Signature:") == 1  # no Ed25519 key yet: RSA only
    _p, ed_txt = generate_key(tmp_path, "example.gov.vn", "ed25519", kind="ed25519")
    signed = DkimSigner(tmp_path, ["example.gov.vn"]).sign(MSG)
    assert signed.endswith(MSG) and signed.count(b"DKIM-Signature:") == 2
    assert signed.index(b"a=rsa-sha256") < signed.index(b"a=ed25519-sha256")  # RSA on top
    keys = dns_for(mail=rsa_txt, ed25519=ed_txt)
    assert dkim.DKIM(signed).verify(idx=0, dnsfunc=keys) and dkim.DKIM(signed).verify(idx=1, dnsfunc=keys)
    off = DkimSigner(tmp_path, ["example.gov.vn"], ed25519_selector=None).sign(MSG)
    assert off.count(b"DKIM-Signature:") == 1 and b"a=rsa-sha256" in off


def test_ed25519_alone_signs_when_there_is_no_rsa_key(tmp_path, caplog):
    _p, ed_txt = generate_key(tmp_path, "example.gov.vn", "ed25519", kind="ed25519")
    signed = DkimSigner(tmp_path, ["example.gov.vn"]).sign(MSG)
    assert signed.count(b"DKIM-Signature:") == 1 and dkim.verify(signed, dnsfunc=dns_for(ed25519=ed_txt))
    assert "no DKIM key" in caplog.text  # the RSA key is the one expected


def test_an_unusable_key_file_leaves_the_message_unsigned_not_stuck(tmp_path, caplog):
    (tmp_path / "dkim").mkdir()
    (tmp_path / "dkim" / "example.gov.vn.mail.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nbroken\n")
    assert DkimSigner(tmp_path, ["example.gov.vn"]).sign(MSG) == MSG
    assert "unusable" in caplog.text


def test_selectors_are_dns_labels_and_the_two_keys_need_two():
    assert Dkim(selector="s2026.mail", ed25519_selector="ed-2026").selector == "s2026.mail"
    for bad in ({"selector": "../../etc/x"}, {"selectors": {"a.vn": "x/y"}}, {"ed25519_selector": ""},
                {"ed25519_selector": "mail"}, {"selectors": {"a.vn": "k1"}, "ed25519_selectors": {"a.vn": "k1"}}):  # fmt: skip
        with pytest.raises(ValidationError):
            Dkim(**bad)
    assert Dkim(ed25519_selector=None).ed25519_selector is None


def test_once_cache_makes_a_value_once_for_concurrent_callers_and_forgets_failures():
    cache, made, gate = OnceCache(), [], threading.Event()

    def make() -> bytes:
        made.append(1)
        gate.wait(5)
        return b"sig"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", make))) for _ in range(5)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert results == [b"sig"] * 5 and len(made) == 1

    def fail() -> bytes:
        raise OSError("disk")

    with pytest.raises(OSError):
        cache.get("f", fail)
    assert cache.get("f", lambda: b"again") == b"again"


def test_once_cache_entries_expire_and_are_bounded():
    now = [0.0]
    cache = OnceCache(size=2, ttl=10, clock=lambda: now[0])
    assert cache.get("a", lambda: b"1") == b"1"
    assert cache.get("a", lambda: b"2") == b"1"
    now[0] = 11
    assert cache.get("a", lambda: b"3") == b"3"  # expired: signed anew (a retry hours later)
    cache.get("b", lambda: b"b")
    cache.get("c", lambda: b"c")
    assert cache.get("a", lambda: b"4") == b"4"  # evicted by size
