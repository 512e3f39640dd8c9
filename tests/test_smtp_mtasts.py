"""MTA-STS (RFC 8461): policy parsing and MX matching (pure), our own policy served by the
portal, and outbound mail obeying a destination's policy: ``enforce`` delivers only over TLS
with a certificate valid for a listed MX host and otherwise waits, ``testing`` delivers; the
policy is fetched over HTTPS once and cached. Real sockets: an HTTPS policy server with a
certificate from a test CA, scripted remote MX hosts, the served portal."""

from __future__ import annotations

import http.client
import http.server
import ssl
import threading

import pytest

from config.mtasts import MtaSts
from config.settings import Dns
from smtp.outbound.dns import Resolver
from smtp.outbound.mtasts import mx_matches, parse_policy, parse_txt
from storage.api import QUEUED
from tests.conftest import free_port, wait_until
from tests.outbound_helpers import (
    SENDER, Script, eventually, make_store, message, port_of, scripted_remote, settings_for, start_service,
)  # fmt: skip
from tests.tls_ca import LocalCA

ENFORCE = "version: STSv1\r\nmode: enforce\r\nmx: mx.good.vn\r\nmx: *.backup.vn\r\nmax_age: 86400\r\n"


# -- pure ---------------------------------------------------------------------------------------------
def test_txt_record_gives_the_policy_id():
    assert parse_txt([b"v=STSv1; id=20261207T01"]) == "20261207T01"
    assert parse_txt([b"v=spf1 -all", b"v=STSv1;id=abc;"]) == "abc"
    assert parse_txt([]) is None
    assert parse_txt([b"v=STSv1; id=a", b"v=STSv1; id=b"]) is None  # several: none (RFC 8461 3.1)
    assert parse_txt([b"v=STSv1; id=not-alnum!"]) is None


def test_policy_parsing_and_refusals():
    policy = parse_policy(ENFORCE, "x")
    assert (policy.mode, policy.mx, policy.max_age, policy.id) == ("enforce", ("mx.good.vn", "*.backup.vn"), 86400, "x")
    assert parse_policy("version: STSv1\nmode: none\nmax_age: 0\n").mode == "none"
    for bad in ("mode: enforce\nmx: a\nmax_age: 1", "version: STSv1\nmode: strict\nmx: a\nmax_age: 1",
                "version: STSv1\nmode: enforce\nmax_age: 1", "version: STSv1\nmode: enforce\nmx: a\nmax_age: soon",
                "version: STSv1\ngarbage"):  # fmt: skip
        with pytest.raises(ValueError):
            parse_policy(bad)


def test_mx_patterns_match_one_leftmost_label():
    assert mx_matches("MX.Good.VN.", ["mx.good.vn"])
    assert mx_matches("a.backup.vn", ["*.backup.vn"])
    assert not mx_matches("a.b.backup.vn", ["*.backup.vn"]) and not mx_matches("backup.vn", ["*.backup.vn"])
    assert not mx_matches("evil.vn", ["mx.good.vn"])


# -- the portal serves our policy ---------------------------------------------------------------------
def test_portal_serves_our_policy_at_the_well_known_address(make_server):
    port = free_port()
    srv = make_server({"listeners": {"web": {"address": "127.0.0.1", "port": port}},
                       "mta_sts": {"mode": "enforce", "mx": ["mail.example.gov.vn", "*.example.gov.vn"], "max_age": 86400}})  # fmt: skip
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

    def get(path):
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": "mta-sts.example.gov.vn"})
            r = conn.getresponse()
            return r.status, r.getheader("Content-Type"), r.read()
        except OSError:
            return None
        finally:
            conn.close()

    status, kind, body = wait_until(lambda: get("/.well-known/mta-sts.txt"))
    assert status == 200 and kind == "text/plain"
    assert body == b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.gov.vn\r\nmx: *.example.gov.vn\r\nmax_age: 86400\r\n"
    policy = parse_policy(body.decode())  # what a sender will read
    assert policy.mode == "enforce" and mx_matches("mail.example.gov.vn", policy.mx)
    assert get("/.well-known/other.txt")[0] == 404


# -- outbound obeys policies --------------------------------------------------------------------------
class PolicyServer:
    """HTTPS at mta-sts.<domain> (a test-CA certificate); policy text per Host header."""

    def __init__(self, ca: LocalCA, policies: dict[str, str]) -> None:
        cert, key = ca.issue("mta-sts.good.vn", stem="sts")
        extra = [ca.issue(f"mta-sts.{d}", stem=f"sts-{d}") for d in policies if d != "good.vn"]
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = (self.headers.get("Host") or "").removeprefix("mta-sts.")
                outer.requests.append(host)
                body = policies.get(host, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        contexts = {f"mta-sts.{d}": c for d, c in zip([d for d in policies if d != "good.vn"], extra)}

        def pick(sock, name, _ctx):
            if name in contexts:
                other = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                other.load_cert_chain(*contexts[name])
                sock.context = other

        ctx.sni_callback = pick
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def store(store_url, tmp_path):
    s = make_store(store_url, tmp_path / "blobs")
    yield s
    s.close()


def rows(store):
    return {r.address: (r.state, r.last_reply or "") for m in store.queue.list() for r in m.recipients}


def server_ctx(cert, key) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def test_enforce_delivers_only_over_verified_tls_to_listed_mx_and_testing_delivers(store, tmp_path):
    ca = LocalCA(tmp_path / "ca")
    good_cert, good_key = ca.issue("mx.good.vn", stem="mx-good")
    from mailserver.maintenance.tls import ensure_certificate

    self_cert, self_key = tmp_path / "self.pem", tmp_path / "self.key"
    ensure_certificate(self_cert, self_key, "mx.bad.vn")
    good_s, bad_s, stray_s, test_s = Script(), Script(), Script(), Script()
    good = await scripted_remote(good_s, tls_context=server_ctx(good_cert, good_key))
    bad = await scripted_remote(bad_s, tls_context=server_ctx(self_cert, self_key))  # does not verify
    stray = await scripted_remote(stray_s, tls_context=server_ctx(good_cert, good_key))
    testing = await scripted_remote(test_s, tls_context=server_ctx(self_cert, self_key))
    sts = PolicyServer(ca, {
        "good.vn": ENFORCE,
        "bad.vn": "version: STSv1\nmode: enforce\nmx: mx.bad.vn\nmax_age: 86400\n",
        "stray.vn": ENFORCE,  # its MX (mx.stray.vn) is not in the policy
        "testing.vn": "version: STSv1\nmode: testing\nmx: mx.testing.vn\nmax_age: 86400\n",
    })  # fmt: skip
    static = {f"_mta-sts.{d}": {"txt": ["v=STSv1; id=1"]} for d in ("good.vn", "bad.vn", "stray.vn", "testing.vn")}
    static |= {f"mta-sts.{d}": {"a": ["127.0.0.1"]} for d in ("good.vn", "bad.vn", "stray.vn", "testing.vn")}
    static |= {f"mx.{d}": {"a": ["127.0.0.1"]} for d in ("good.vn", "bad.vn", "stray.vn", "testing.vn")}
    routes = {"good.vn": f"mx.good.vn:{port_of(good)}", "bad.vn": f"mx.bad.vn:{port_of(bad)}",
              "stray.vn": f"mx.stray.vn:{port_of(stray)}", "testing.vn": f"mx.testing.vn:{port_of(testing)}"}  # fmt: skip
    settings = settings_for(tmp_path, routes, ca_file=ca.pem).model_copy(update={
        "dns": Dns(static_only=True, static=static), "mta_sts": MtaSts(policy_port=sts.port)})  # fmt: skip
    service = await start_service(settings, store, resolver=Resolver.from_settings(settings.dns))
    try:
        blob = store.messages.put_blob(message())
        for rcpt in ("a@good.vn", "b@bad.vn", "c@stray.vn", "d@testing.vn", "e@good.vn"):
            await service.enqueue(blob, SENDER, [rcpt])
        await eventually(lambda: len(good_s.received) == 2 and test_s.received and len(rows(store)) == 2
                         and all(reply for _s, reply in rows(store).values()))  # fmt: skip
        await service.enqueue(blob, SENDER, ["f@good.vn"])  # a later run: the policy comes from the cache
        await eventually(lambda: len(good_s.received) == 3)
    finally:
        await service.stop()
        for s in (good, bad, stray, testing):
            s.close()
        sts.close()
    assert all(tls for *_x, tls in good_s.received)
    assert bad_s.received == [] and stray_s.received == [] and test_s.received
    waiting = rows(store)
    assert waiting["b@bad.vn"][0] == QUEUED and "CERTIFICATE_VERIFY_FAILED" in waiting["b@bad.vn"][1]
    assert waiting["c@stray.vn"][0] == QUEUED and "4.7.5 MTA-STS" in waiting["c@stray.vn"][1]
    assert sts.requests.count("good.vn") == 1  # fetched once (TXT id unchanged), then from the cache
