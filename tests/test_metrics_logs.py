"""Operations: /metrics counters and histograms read with prometheus-client's own text parser
(messages received, delivered, refused by reason, logins by protocol and result, SMTP DATA and
IMAP FETCH/SEARCH latency, certificate expiry), summed over ``serve --workers`` processes; the
JSON log with stable field names, reopened on SIGHUP (logrotate); the TLS certificate reloaded
on SIGHUP while an open session goes on."""

from __future__ import annotations

import imaplib
import json
import poplib
import signal
import smtplib
import socket
import ssl
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailserver.maintenance.tls import ensure_certificate
from tests.conftest import free_port, wait_until

ADDRESS = "annv@example.gov.vn"
PASSWORD = "Mat-khau-2026!"
UNKNOWN = "khongco@example.gov.vn"


def _insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the server's self-signed certificate
    return ctx


def scrape(server) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as (name, sorted labels) → value, parsed by prometheus-client."""
    url = f"https://127.0.0.1:{server.settings.listeners.web.port}/metrics"
    with urllib.request.urlopen(url, context=_insecure(), timeout=30) as r:
        text = r.read().decode("utf-8")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _traffic(server, messages: int) -> None:
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=30) as c:
        for n in range(messages):
            c.sendmail("a@other.gov.vn", [ADDRESS], f"Subject: so {n}\r\n\r\nthu {n}\r\n".encode())
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            c.sendmail("a@other.gov.vn", [UNKNOWN], b"Subject: x\r\n\r\nx\r\n")
    imap = imaplib.IMAP4(server.host, server.port("imap"))
    with pytest.raises(imaplib.IMAP4.error):
        imap.login(ADDRESS, "Sai-mat-khau-1")
    imap.logout()
    imap = imaplib.IMAP4(server.host, server.port("imap"))
    imap.login(ADDRESS, PASSWORD)
    imap.select("INBOX")
    imap.fetch("1:*", "(FLAGS)")
    imap.uid("SEARCH", "TEXT", "thu")
    imap.logout()
    pop = poplib.POP3(server.host, server.port("pop3"))
    pop.user(ADDRESS)
    with pytest.raises(poplib.error_proto):
        pop.pass_("Sai-mat-khau-2")
    pop.quit()


def _web() -> dict:
    return {"listeners": {"web": {"address": "127.0.0.1", "port": free_port()}}}


def test_metrics_count_mail_logins_and_latency(make_server):
    server = make_server(_web())
    server.add_account(ADDRESS, PASSWORD)
    _traffic(server, 3)
    m = scrape(server)
    assert m[("mailserver_smtp_messages_received_total", (("service", "mx"),))] == 3
    assert m[("mailserver_smtp_deliveries_total", ())] == 3
    refused = {k: v for k, v in m.items() if k[0] == "mailserver_smtp_refused_total" and ("command", "RCPT") in k[1]}
    assert sum(refused.values()) == 1 and all(dict(k[1])["reason"] for k in refused)
    assert m[("mailserver_logins_total", (("protocol", "imap"), ("result", "fail")))] == 1
    assert m[("mailserver_logins_total", (("protocol", "imap"), ("result", "ok")))] >= 1
    assert m[("mailserver_logins_total", (("protocol", "pop3"), ("result", "fail")))] == 1
    assert m[("mailserver_smtp_data_seconds_count", ())] == 3
    assert m[("mailserver_imap_command_seconds_count", (("command", "FETCH"),))] == 1
    assert m[("mailserver_imap_command_seconds_count", (("command", "SEARCH"),))] == 1
    assert m[("mailserver_imap_command_seconds_bucket", (("command", "SEARCH"), ("le", "+Inf")))] == 1
    assert m[("mailserver_tls_certificate_expiry_timestamp_seconds", ())] > time.time() + 86400
    assert m[("mailserver_messages", ())] == 3  # the store's figures are still there


def test_metrics_are_summed_over_worker_processes(make_server):
    server = make_server(_web(), start=False)
    if server.backend != "postgresql":
        pytest.skip("serve --workers needs PostgreSQL")
    server.start(workers=2)
    server.add_account(ADDRESS, PASSWORD)
    for _ in range(4):  # four connections: the kernel spreads them over both workers
        with smtplib.SMTP(server.host, server.port("smtp"), timeout=30) as c:
            c.sendmail("a@other.gov.vn", [ADDRESS], b"Subject: w\r\n\r\nw\r\n")
    for _ in range(4):  # whichever worker answers the scrape, it tells every worker's counts
        assert scrape(server)[("mailserver_smtp_messages_received_total", (("service", "mx"),))] == 4


def _json_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_json_log_has_stable_fields_and_is_reopened_on_sighup(make_server, tmp_path):
    log = tmp_path / "log" / "mail.log"
    log.parent.mkdir()
    server = make_server({"logging": {"format": "json", "file": str(log), "level": "INFO"}})
    server.add_account(ADDRESS, PASSWORD)
    _traffic(server, 1)
    lines = wait_until(lambda: [r for r in _json_lines(log) if r.get("event") == "login" and r.get("result") == "fail"],
                       what="a failed login in the JSON log")
    imap_fail = next(r for r in lines if r["protocol"] == "imap")
    assert imap_fail["client"] == "127.0.0.1" and imap_fail["account"] == ADDRESS and imap_fail["level"] == "INFO"
    assert imap_fail["time"].endswith("+00:00") and "login protocol=imap" in imap_fail["message"]
    delivered = wait_until(lambda: [r for r in _json_lines(log) if "delivered" in r["message"] and r.get("message_id")],
                           what="a delivery with its message id")
    assert delivered[0]["logger"].startswith("smtp")

    log.rename(log.with_name("mail.log.1"))  # logrotate
    server.proc.send_signal(signal.SIGHUP)
    wait_until(log.exists, what="the log file reopened")
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=30) as c:
        c.sendmail("a@other.gov.vn", [ADDRESS], b"Subject: sau\r\n\r\nsau\r\n")
    wait_until(lambda: any("delivered" in r["message"] for r in _json_lines(log)), what="new lines in the new file")
    assert server.proc.poll() is None


def _peer_certificate(server, service: str) -> bytes:
    with socket.create_connection((server.host, server.port(service)), timeout=30) as raw:
        with _insecure().wrap_socket(raw) as tls:
            return tls.getpeercert(binary_form=True)


def test_tls_certificate_reloaded_on_sighup_without_dropping_sessions(make_server, tmp_path):
    server = make_server()
    server.add_account(ADDRESS, PASSWORD)
    old = _peer_certificate(server, "imaps")
    session = imaplib.IMAP4_SSL(server.host, server.port("imaps"), ssl_context=_insecure())
    session.login(ADDRESS, PASSWORD)
    ensure_certificate(tmp_path / "cert.pem", tmp_path / "key.pem", "mail2.example.gov.vn")  # the renewal
    server.settings.tls.key.write_bytes((tmp_path / "key.pem").read_bytes())
    server.settings.tls.cert.write_bytes((tmp_path / "cert.pem").read_bytes())
    server.proc.send_signal(signal.SIGHUP)
    new = wait_until(lambda: (c := _peer_certificate(server, "imaps")) != old and c, what="the new certificate served")
    assert _peer_certificate(server, "pop3s") == new and _peer_certificate(server, "submissions") == new
    assert session.noop()[0] == "OK"  # the open session goes on
    session.select("INBOX")
    session.logout()
    server.settings.tls.key.write_bytes(b"not a key")  # a half-copied renewal: refused, the old pair stays
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "not reloaded" in server.log(), what="the refusal logged")
    assert _peer_certificate(server, "imaps") == new
