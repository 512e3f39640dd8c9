"""Submission listeners (587 STARTTLS, 465 implicit TLS) against the fake store: AUTH under TLS,
no MAIL before AUTH, sender must be the user's own address, no relay without an outbound queue."""

from __future__ import annotations

import asyncio
import base64
import ssl
import smtplib

import aiosmtplib
import pytest

from config.settings import Listener, Listeners, Settings, TLS
from mailserver.maintenance.tls import ensure_certificate
from smtp import replies
from smtp.service import start_smtp
from tests.fakes import FakeAuth, FakeStore
from tests.test_smtp_session import LOCAL, OTHER, Dialogue, Mx, client_tls

pytestmark = pytest.mark.requirement("R-PROTO-1")

PASSWORD = "Mat-khau-2026!"
UTF8_PASSWORD = "Mật-khẩu-2026"
S235 = replies.S235_AUTH_OK[:9]
S535 = replies.S535_AUTH_FAILED[:9]
S530 = "530 5.7.0"
S538 = "538 5.7.11"
S553 = replies.S553_SENDER_NOT_OWNED[:9]
S550_RELAY = replies.S550_RELAY_DENIED[:9]
S501_B64 = replies.S501_AUTH_BASE64[:9]


@pytest.fixture
async def sub(tmp_path):
    """(store, submission port, submissions port) with plaintext AUTH on loopback turned off."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ensure_certificate(cert, key, "mx.test")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    store = FakeStore()
    store.add(LOCAL)
    store.add(OTHER)
    store.add("utf8@example.gov.vn")
    auth = FakeAuth(store, {LOCAL: PASSWORD, "utf8@example.gov.vn": UTF8_PASSWORD})
    settings = Settings(
        hostname="mx.test", data_dir=tmp_path, tls=TLS(cert=cert, key=key, allow_plaintext_auth_on_loopback=False),
        listeners=Listeners(submission=Listener(port=0), submissions=Listener(port=0)),
    )  # fmt: skip
    servers = await start_smtp(settings, store, auth, tls)
    yield store, [s.sockets[0].getsockname()[1] for s in servers]
    for s in servers:
        s.close()


def plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


async def test_submission_requires_starttls_before_auth_and_auth_before_mail(sub, caplog):
    store, (port, _) = sub
    d = await Dialogue.open(Mx(port, store, None))
    assert "AUTH" not in await d.cmd("EHLO client.test")
    assert (await d.cmd("MAIL FROM:<annv@example.gov.vn>")).startswith(S530)
    assert (await d.cmd(f"AUTH PLAIN {plain(LOCAL, PASSWORD)}")).startswith(S538)
    await d.cmd("STARTTLS")
    await d.writer.start_tls(client_tls())
    assert "250-AUTH LOGIN PLAIN" in await d.cmd("EHLO client.test")
    assert (await d.cmd(f"AUTH PLAIN {plain(LOCAL, 'wrong')}")).startswith(S535)
    assert (await d.cmd(f"AUTH PLAIN {plain('ghost@example.gov.vn', 'wrong')}")).startswith(S535)
    assert (await d.cmd("AUTH PLAIN !!notbase64")).startswith(S501_B64)
    assert (await d.cmd(f"AUTH PLAIN {plain(LOCAL, PASSWORD)}")).startswith(S235)
    assert (await d.cmd(f"MAIL FROM:<{OTHER}>")).startswith(S553)
    assert (await d.cmd(f"MAIL FROM:<{LOCAL}>")).startswith("250 2.1.0")
    assert (await d.cmd("RCPT TO:<someone@other-ministry.gov.vn>")).startswith(S550_RELAY)
    assert (await d.cmd(f"RCPT TO:<{OTHER}>")).startswith("250 2.1.5")
    await d.cmd("DATA")
    assert (await d.cmd(b"Subject: internal\r\n\r\nhello\r\n.")).startswith("250 2.0.0")
    assert b"with ESMTPSA id" in store.delivered[0].blob
    assert not [r for r in caplog.records if "deprecated" in r.getMessage()]  # aiosmtpd's login_data
    await d.close()


async def test_auth_login_with_challenges(sub):
    store, (port, _) = sub
    d = await Dialogue.open(Mx(port, store, None))
    await d.cmd("EHLO client.test")
    await d.cmd("STARTTLS")
    await d.writer.start_tls(client_tls())
    await d.cmd("EHLO client.test")
    assert (await d.cmd("AUTH LOGIN")).startswith("334 ")
    assert (await d.cmd(base64.b64encode(LOCAL.encode()).decode())).startswith("334 ")
    assert (await d.cmd(base64.b64encode(PASSWORD.encode()).decode())).startswith(S235)
    await d.close()


async def test_auth_plain_with_a_utf8_password_and_no_initial_response(sub):
    store, (port, _) = sub
    d = await Dialogue.open(Mx(port, store, None))
    await d.cmd("EHLO client.test")
    await d.cmd("STARTTLS")
    await d.writer.start_tls(client_tls())
    await d.cmd("EHLO client.test")
    assert (await d.cmd("AUTH PLAIN")).startswith("334 ")
    assert (await d.cmd(plain("utf8@example.gov.vn", UTF8_PASSWORD))).startswith(S235)
    await d.close()


async def test_submissions_implicit_tls_offers_auth_and_delivers(sub):
    store, (_, port) = sub
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, use_tls=True, tls_context=client_tls()) as c:
        await c.ehlo()
        assert c.supports_extension("auth") and not c.supports_extension("starttls")
        await c.login(LOCAL, PASSWORD)
        errors, _ = await c.sendmail(LOCAL, [OTHER], b"Subject: via 465\r\n\r\nbody\r\n")
    assert errors == {} and b"with ESMTPSA id" in store.delivered[0].blob


async def test_smtplib_submission_starttls_login(sub):
    store, (port, _) = sub

    def send():
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test") as s:
            s.starttls(context=client_tls())
            s.login(LOCAL, PASSWORD)
            s.sendmail(LOCAL, [OTHER], "Subject: Công văn\r\n\r\nnội dung\r\n".encode())

    await asyncio.to_thread(send)
    stored = store.delivered[0].blob
    assert stored.endswith("\r\n\r\nnội dung\r\n".encode()) and "\r\nSubject: Công văn\r\n".encode() in stored
    assert b"\r\nDate: " in stored and b"\r\nMessage-ID: <" in stored  # hygiene adds what was missing
