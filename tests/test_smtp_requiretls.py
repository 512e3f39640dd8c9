"""RFC 8689 REQUIRETLS: offered over TLS only, accepted and kept with queued mail, and honoured
on the way out (a verified certificate and a hop that offers REQUIRETLS, else the message waits:
never cleartext, never an unverified certificate); ``TLS-Required: No`` lifts our own TLS policy.
Real sockets: the served server, and remotes with certificates from a test CA or self-signed."""

from __future__ import annotations

import smtplib
import ssl

import pytest
from aiosmtpd.smtp import SMTP as AioSMTP

from config.settings import QueueDomain
from mailserver.maintenance.tls import ensure_certificate
from smtp.outbound.tlsrequired import tls_optional
from storage.api import QUEUED, EnvelopeOptions
from tests.outbound_helpers import (
    SENDER, Script, _Handler, eventually, make_store, message, port_of, scripted_remote, settings_for, start_service,
)  # fmt: skip
from tests.tls_ca import LocalCA

S250, S530 = 250, 530
REQUIRE = EnvelopeOptions(requiretls=True)


def test_tls_required_no_is_read_from_the_header_section_only():
    assert tls_optional(b"Subject: x\r\nTLS-Required: No\r\n\r\nbody\r\n")
    assert tls_optional(b"tls-required:   no\r\n\r\n")
    assert not tls_optional(b"Subject: x\r\n\r\nTLS-Required: No\r\n")
    assert not tls_optional(b"TLS-Required: Yes\r\n\r\n")


def _unverified() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_requiretls_is_offered_and_accepted_over_tls_only(server):
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=30) as c:
        c.ehlo("client.test")
        assert not c.has_extn("requiretls")
        code, text = c.docmd("MAIL FROM:<a@x.test> REQUIRETLS")
        assert code == S530 and b"5.7.10" in text
        c.starttls(context=_unverified())
        c.ehlo("client.test")
        assert c.has_extn("requiretls")
        assert c.docmd("MAIL FROM:<a@x.test> REQUIRETLS")[0] == S250


# -- outbound -----------------------------------------------------------------------------------------
class _TlsHandler(_Handler):
    """Offers REQUIRETLS once TLS is up, as RFC 8689 4.1 says."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if session.ssl is not None:
            responses.insert(-1, "250-REQUIRETLS")
        return responses


class _RequireTlsRemote(AioSMTP):
    """aiosmtpd refuses parameters it does not know: take REQUIRETLS off and note it."""

    async def smtp_MAIL(self, arg):
        if arg and arg.upper().endswith(" REQUIRETLS"):
            self.event_handler.s.received_requiretls = True
            arg = arg[: -len(" REQUIRETLS")]
        await super().smtp_MAIL(arg)


async def requiretls_remote(script: Script, ctx: ssl.SSLContext):
    import asyncio

    def make():
        return _RequireTlsRemote(_TlsHandler(script), hostname="remote.test", decode_data=False, tls_context=ctx,
                                 require_starttls=False)  # fmt: skip

    return await asyncio.get_running_loop().create_server(make, "127.0.0.1", 0)


def server_context(cert, key) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.fixture
def store(store_url, tmp_path):
    s = make_store(store_url, tmp_path / "blobs")
    yield s
    s.close()


def rows(store):
    return [(r.address, r.state, r.last_reply or "") for m in store.queue.list() for r in m.recipients]


async def test_requiretls_mail_waits_for_verified_tls_and_a_hop_that_offers_requiretls(store, tmp_path):
    ca = LocalCA(tmp_path / "ca")
    good_cert, good_key = ca.issue("mx.good.vn", stem="good")
    self_cert, self_key = tmp_path / "self.pem", tmp_path / "self.key"
    ensure_certificate(self_cert, self_key, "mx.self.vn")
    plain_s, self_s, notls_s, good_s = Script(), Script(), Script(), Script()
    plain = await scripted_remote(plain_s)  # no STARTTLS at all
    selfsigned = await requiretls_remote(self_s, server_context(self_cert, self_key))  # does not verify
    verified_without = await scripted_remote(notls_s, tls_context=server_context(good_cert, good_key))  # no REQUIRETLS
    good = await requiretls_remote(good_s, server_context(good_cert, good_key))
    routes = {"plain.vn": f"127.0.0.1:{port_of(plain)}", "self.vn": f"127.0.0.1:{port_of(selfsigned)}",
              "notls.vn": f"127.0.0.1:{port_of(verified_without)}", "good.vn": f"127.0.0.1:{port_of(good)}"}  # fmt: skip
    settings = settings_for(tmp_path, routes, ca_file=ca.pem)
    service = await start_service(settings, store)
    try:
        blob = store.messages.put_blob(message())
        for rcpt in ("a@plain.vn", "b@self.vn", "c@notls.vn", "d@good.vn"):
            await service.enqueue(blob, SENDER, [rcpt], options=REQUIRE)
        await eventually(lambda: good_s.received and len([r for r in rows(store) if r[2]]) == 3)
    finally:
        await service.stop()
        for s in (plain, selfsigned, verified_without, good):
            s.close()
    assert plain_s.received == [] and self_s.received == [] and notls_s.received == []
    assert good_s.received[0][3] is True and good_s.received_requiretls
    waiting = {a: (state, reply) for a, state, reply in rows(store)}
    assert set(waiting) == {"a@plain.vn", "b@self.vn", "c@notls.vn"}
    assert all(state == QUEUED for state, _ in waiting.values())  # deferred, never downgraded
    assert "STARTTLS" in waiting["a@plain.vn"][1] and "5.7.10" in waiting["a@plain.vn"][1]
    assert "CERTIFICATE_VERIFY_FAILED" in waiting["b@self.vn"][1]
    assert "5.7.10" in waiting["c@notls.vn"][1] and "REQUIRETLS" in waiting["c@notls.vn"][1]


async def test_tls_required_no_lifts_a_domains_require_tls(store, tmp_path):
    script = Script()
    plain = await scripted_remote(script)
    settings = settings_for(tmp_path, {"plain.vn": f"127.0.0.1:{port_of(plain)}"},
                            domains={"plain.vn": QueueDomain(require_tls=True)})  # fmt: skip
    service = await start_service(settings, store)
    try:
        lifted = message(subject="gửi kể cả không mã hoá").replace(b"MIME-Version", b"TLS-Required: No\r\nMIME-Version")
        await service.enqueue(store.messages.put_blob(lifted), SENDER, ["a@plain.vn"])
        await service.enqueue(store.messages.put_blob(message()), SENDER, ["b@plain.vn"])
        await eventually(lambda: script.received and rows(store) and rows(store)[0][2])
    finally:
        await service.stop()
        plain.close()
    assert [to for _f, to, _d, _t in script.received] == [["a@plain.vn"]]
    assert [r[0] for r in rows(store)] == ["b@plain.vn"]  # the domain's policy still holds for the other
