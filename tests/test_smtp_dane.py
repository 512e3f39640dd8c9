"""DANE for outbound SMTP (RFC 7672): TLSA records of an MX host, looked up through the
configured resolver and used only when its answer carries the AD bit, decide the TLS of that
host: DANE-EE(3) and DANE-TA(2) matching, STARTTLS required, mail deferred (never sent in clear or
to a mismatching certificate). A dnspython DNS server on a free port stands in for the
validating resolver; remotes present self-signed or test-CA certificates."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mailserver.maintenance.tls import ensure_certificate
from smtp.outbound import dane
from smtp.outbound.dane import Tlsa
from smtp.outbound.dns import Resolver
from storage.api import QUEUED
from tests.dns_zone import ZoneServer
from tests.outbound_helpers import (
    SENDER, Script, eventually, make_store, message, port_of, scripted_remote, settings_for, start_service,
)  # fmt: skip
from tests.test_smtp_mtasts import server_ctx
from tests.tls_ca import LocalCA


def _cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def spki_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def cert_sha256(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


# -- pure ---------------------------------------------------------------------------------------------
def test_dane_ee_and_dane_ta_matching(tmp_path):
    ca = LocalCA(tmp_path / "ca")
    leaf_path, _key = ca.issue("mx.ta.vn", stem="ta")
    leaf, root = _cert(leaf_path), ca.cert
    der = [leaf.public_bytes(Encoding.DER), root.public_bytes(Encoding.DER)]
    ee = Tlsa.parse(f"3 1 1 {spki_sha256(leaf)}")
    assert dane.check(der[:1], [ee], "anything.example") is None  # DANE-EE: no name check
    assert dane.check(der[:1], [Tlsa(3, 0, 0, leaf.public_bytes(Encoding.DER))], "x") is None
    assert "matches no TLSA" in dane.check(der[:1], [Tlsa.parse("3 1 1 " + "00" * 32)], "x")
    ta = Tlsa.parse(f"2 0 1 {cert_sha256(root)}")
    assert dane.check(der, [ta], "mx.ta.vn") is None
    assert "does not chain" in dane.check(der, [ta], "mx.other.vn")  # DANE-TA: the name must match
    assert dane.check(der, [Tlsa.parse(f"1 1 1 {spki_sha256(leaf)}")], "mx.ta.vn") == "no usable TLSA record"


# -- outbound -----------------------------------------------------------------------------------------
@pytest.fixture
def store(store_url, tmp_path):
    s = make_store(store_url, tmp_path / "blobs")
    yield s
    s.close()


def rows(store):
    return {r.address: (r.state, r.last_reply or "") for m in store.queue.list() for r in m.recipients}


async def test_tlsa_records_decide_tls_only_when_validated(store, tmp_path):
    ca = LocalCA(tmp_path / "ca")
    self_cert, self_key = tmp_path / "self.pem", tmp_path / "self.key"
    ensure_certificate(self_cert, self_key, "mx.ee.vn")
    ta_leaf, ta_key = ca.issue("mx.ta.vn", stem="ta")
    chain = tmp_path / "ta-chain.pem"
    chain.write_bytes(ta_leaf.read_bytes() + ca.pem.read_bytes())  # leaf and its CA, as servers send them
    scripts = {d: Script() for d in ("ee", "wrong", "insecure", "ta", "plain")}
    remotes = {
        "ee": await scripted_remote(scripts["ee"], tls_context=server_ctx(self_cert, self_key)),
        "wrong": await scripted_remote(scripts["wrong"], tls_context=server_ctx(self_cert, self_key)),
        "insecure": await scripted_remote(scripts["insecure"], tls_context=server_ctx(self_cert, self_key)),
        "ta": await scripted_remote(scripts["ta"], tls_context=server_ctx(chain, ta_key)),
        "plain": await scripted_remote(scripts["plain"]),
    }
    good_ee = f"3 1 1 {spki_sha256(_cert(self_cert))}"
    bad_ee = "3 1 1 " + "ab" * 32
    tlsa = {"ee": good_ee, "wrong": bad_ee, "insecure": bad_ee, "ta": f"2 0 1 {cert_sha256(ca.cert)}", "plain": good_ee}
    names = {d: f"_{port_of(r)}._tcp.mx.{d}.vn" for d, r in remotes.items()}
    zone = ZoneServer({(names[d], "TLSA"): [tlsa[d]] for d in remotes},
                      signed={names[d] for d in remotes if d != "insecure"})  # fmt: skip
    routes = {f"{d}.vn": f"mx.{d}.vn:{port_of(r)}" for d, r in remotes.items()}
    resolver = Resolver({f"mx.{d}.vn": {"a": ["127.0.0.1"]} for d in remotes} | {
        f"_mta-sts.{d}.vn": {} for d in remotes}, nameservers=[zone.address], timeout=3)  # fmt: skip
    service = await start_service(settings_for(tmp_path, routes), store, resolver=resolver)
    try:
        blob = store.messages.put_blob(message())
        for d in remotes:
            await service.enqueue(blob, SENDER, [f"rcpt@{d}.vn"])
        await eventually(lambda: len(rows(store)) == 2 and all(r for _s, r in rows(store).values())
                         and all(scripts[d].received for d in ("ee", "insecure", "ta")))  # fmt: skip
    finally:
        await service.stop()
        for r in remotes.values():
            r.close()
        zone.close()
    assert scripts["ee"].received[0][3] is True and scripts["ta"].received[0][3] is True  # over TLS
    assert scripts["wrong"].received == [] and scripts["plain"].received == []
    waiting = rows(store)
    assert waiting["rcpt@wrong.vn"][0] == QUEUED and "4.7.5 DANE" in waiting["rcpt@wrong.vn"][1]
    assert waiting["rcpt@plain.vn"][0] == QUEUED and "STARTTLS not offered" in waiting["rcpt@plain.vn"][1]
    assert all(ad for name, kind, ad in zone.queries if kind == "TLSA")  # the AD bit was asked for
