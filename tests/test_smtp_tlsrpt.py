"""TLS-RPT (RFC 8460): outbound TLS sessions are counted per day, domain, policy and MX host,
and once the day is over a JSON report goes to the rua addresses the domain publishes. Real
sockets: scripted remotes (one TLS success, one DANE failure) and a remote collecting reports."""

from __future__ import annotations

import email
import json
import ssl

from mailserver.maintenance.tls import ensure_certificate
from smtp.outbound import tlsrpt
from smtp.outbound.dns import Resolver
from storage.api import TlsCount
from tests.outbound_helpers import (
    SENDER, Clock, Script, eventually, make_store, message, port_of, scripted_remote, settings_for, start_service,
)  # fmt: skip
from tests.test_smtp_mtasts import server_ctx

import pytest


def test_rua_parsing_and_failure_classes():
    assert tlsrpt.parse_rua([b"v=TLSRPTv1; rua=mailto:a@x.vn,https://r.x.vn/v1,mailto:tls%2Breports@y.vn"]) == [
        "a@x.vn", "tls+reports@y.vn"]  # https: skipped
    assert tlsrpt.parse_rua([b"v=TLSRPTv1;rua=mailto:a@x.vn", b"v=TLSRPTv1;rua=mailto:b@x.vn"]) == []
    assert tlsrpt.parse_rua([b"v=spf1 -all"]) == []
    assert tlsrpt.classify(ssl.SSLCertVerificationError("[SSL: CERTIFICATE_VERIFY_FAILED] Hostname mismatch")) == "certificate-host-mismatch"
    assert tlsrpt.classify(ssl.SSLCertVerificationError("[SSL: CERTIFICATE_VERIFY_FAILED] self-signed certificate")) == "certificate-not-trusted"
    assert tlsrpt.classify(ConnectionRefusedError("refused")) is None


def test_report_json_follows_rfc_8460():
    counts = [TlsCount("2026-12-06", "x.vn", "sts", "mx.x.vn", "success", 7),
              TlsCount("2026-12-06", "x.vn", "sts", "mx2.x.vn", "certificate-expired", 2)]  # fmt: skip
    report = tlsrpt.build_report("x.vn", "2026-12-06", counts, organisation="mail.a.vn", contact="postmaster@a.vn",
                                 report_id="r1")  # fmt: skip
    (policy,) = report["policies"]
    assert report["date-range"] == {"start-datetime": "2026-12-06T00:00:00Z", "end-datetime": "2026-12-06T23:59:59Z"}
    assert policy["policy"] == {"policy-type": "sts", "policy-domain": "x.vn", "mx-host": ["mx.x.vn", "mx2.x.vn"]}
    assert policy["summary"] == {"total-successful-session-count": 7, "total-failure-session-count": 2}
    assert policy["failure-details"] == [{"result-type": "certificate-expired", "receiving-mx-hostname": "mx2.x.vn",
                                          "failed-session-count": 2}]  # fmt: skip


@pytest.fixture
def store(store_url, tmp_path):
    s = make_store(store_url, tmp_path / "blobs")
    yield s
    s.close()


async def test_daily_report_of_outbound_sessions_goes_to_the_published_rua(store, tmp_path):
    cert, key = tmp_path / "self.pem", tmp_path / "self.key"
    ensure_certificate(cert, key, "mx.remote.vn")
    ok_s, wrong_s, reports_s = Script(), Script(), Script()
    ok = await scripted_remote(ok_s, tls_context=server_ctx(cert, key))
    wrong = await scripted_remote(wrong_s, tls_context=server_ctx(cert, key))
    reports = await scripted_remote(reports_s)
    routes = {"ok.vn": f"mx.ok.vn:{port_of(ok)}", "wrong.vn": f"mx.wrong.vn:{port_of(wrong)}",
              "reports.vn": f"127.0.0.1:{port_of(reports)}"}  # fmt: skip
    rua = {"txt": ["v=TLSRPTv1; rua=mailto:tls-reports@reports.vn"]}
    resolver = Resolver({
        "mx.ok.vn": {"a": ["127.0.0.1"]}, "mx.wrong.vn": {"a": ["127.0.0.1"]},
        f"_{port_of(wrong)}._tcp.mx.wrong.vn": {"tlsa": ["3 1 1 " + "cd" * 32]},  # operator-given: trusted
        "_smtp._tls.ok.vn": rua, "_smtp._tls.wrong.vn": rua,
    }, static_only=True)  # fmt: skip
    clock = Clock()
    service = await start_service(settings_for(tmp_path, routes), store, resolver=resolver, clock=clock)
    try:
        blob = store.messages.put_blob(message())
        await service.enqueue(blob, SENDER, ["a@ok.vn"])
        await service.enqueue(blob, SENDER, ["b@wrong.vn"])
        await eventually(lambda: ok_s.received and any(r.last_reply for m in store.queue.list() for r in m.recipients))
        day = clock.now.date().isoformat()
        await eventually(lambda: len(store.queue.tls_counts("9999-12-31")) == 2)  # flushed by the worker
        clock.advance(24 * 3600)  # the day is over: the worker reports it
        await eventually(lambda: len(reports_s.received) == 2, timeout=30)
    finally:
        await service.stop()
        for s in (ok, wrong, reports):
            s.close()
    assert wrong_s.received == []
    found = {}
    for _from, to, raw, _tls in reports_s.received:
        msg = email.message_from_bytes(raw)
        assert to == ["tls-reports@reports.vn"] and msg["TLS-Required"] == "No"
        assert msg.get_content_type() == "multipart/report" and msg.get_param("report-type") == "tlsrpt"
        (part,) = [p for p in msg.walk() if p.get_content_type() == "application/tlsrpt+json"]
        report = json.loads(part.get_payload(decode=True))
        found[msg["TLS-Report-Domain"]] = report
        assert report["date-range"]["start-datetime"] == f"{day}T00:00:00Z"
    (ok_policy,) = found["ok.vn"]["policies"]
    assert ok_policy["policy"]["policy-type"] == "no-policy-found"
    assert ok_policy["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 0}
    (dane_policy,) = found["wrong.vn"]["policies"]
    assert dane_policy["policy"]["policy-type"] == "tlsa"
    assert dane_policy["summary"]["total-failure-session-count"] == 1
    assert dane_policy["failure-details"][0]["result-type"] == "validation-failure"
    assert store.queue.tls_counts(day) == []  # reported days are dropped
