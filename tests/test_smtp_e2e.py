"""The MX service end to end: the real server process (tests/conftest.py ``server``), real clients
(swaks, smtplib, aiosmtplib), messages read back from the store and over IMAP."""

from __future__ import annotations

import asyncio
import base64
import imaplib
import shutil
import smtplib
import ssl
import subprocess

import aiosmtplib
import pytest

pytestmark = pytest.mark.requirement("R-PROTO-2")


PASSWORD = "Mật-khẩu-2026"
ANNV = "annv@example.gov.vn"
BINH = "binhtt@example.gov.vn"
S550_USER = 550
S550_RELAY = 550


def inbox(server, address: str) -> list[bytes]:
    """Stored bytes of every message in the account's INBOX, in UID order."""
    store = server.open_store()
    try:
        account = store.accounts.get_account(address)
        folder = store.folders.get_folder(account.id, "INBOX")
        view = store.messages.open_view(folder.id, claim_recent=False)
        return [store.messages.read_blob(m.blob) for m in store.messages.fetch(folder.id, view.uids)]
    finally:
        store.close()


@pytest.fixture(scope="module")
def mx(server):
    server.add_account(ANNV, PASSWORD)
    server.add_account(BINH, PASSWORD, name="Trần Thị Bình")
    return server


def client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_swaks_delivers_a_vietnamese_subject_readable_over_imap(mx):
    before = len(inbox(mx, ANNV))
    result = subprocess.run(
        ["swaks", "--server", f"{mx.host}:{mx.port('smtp')}", "--to", ANNV, "--from", "van@other.gov.vn",
         "--header", "Subject: Công văn số 12", "--body", "Kính gửi anh An.", "--tls"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0" in result.stdout and "ENHANCEDSTATUSCODES" in result.stdout
    messages = inbox(mx, ANNV)
    assert len(messages) == before + 1
    stored = messages[-1]
    assert stored.startswith(b"Return-Path: <van@other.gov.vn>\r\nAuthentication-Results: mail.example.gov.vn;\r\n")
    assert b"\r\nReceived: from " in stored
    assert b"with ESMTPS id" in stored and b"for <annv@example.gov.vn>;" in stored
    assert "Subject: Công văn số 12".encode() in stored
    imap = imaplib.IMAP4(mx.host, mx.port("imap"))
    try:
        imap.authenticate("PLAIN", lambda _: f"\0{ANNV}\0{PASSWORD}".encode())  # UTF-8 password
        imap.select("INBOX", readonly=True)
        typ, data = imap.fetch(str(before + 1), "(BODY.PEEK[])")
        assert typ == "OK" and data[0][1] == stored
    finally:
        imap.logout()


def test_stored_bytes_are_our_trace_headers_then_the_message_byte_for_byte(mx):
    message = (
        b"From: =?utf-8?q?Tr=E1=BA=A7n?= <binh@other.gov.vn>\r\nSubject: \xc4\x90\xe1\xba\xa7u m\xe1\xbb\x91i\r\n"
        b"DKIM-Signature: v=1; a=rsa-sha256; d=other.gov.vn; s=x; h=from:subject; bh=abc=; b=def=\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b".leading dot\r\n..two dots\r\ntrailing spaces   \r\n\ttab\r\n"
    )
    before = len(inbox(mx, BINH))
    with smtplib.SMTP(mx.host, mx.port("smtp"), local_hostname="mx.other.gov.vn") as c:
        c.sendmail("binh@other.gov.vn", [BINH], message, mail_options=["BODY=8BITMIME"])
    stored = inbox(mx, BINH)[before]
    assert stored.endswith(message)
    prefix = stored[: -len(message)]
    assert prefix.startswith(b"Return-Path: <binh@other.gov.vn>\r\nAuthentication-Results: mail.example.gov.vn;\r\n")
    received = prefix[prefix.index(b"Received: ") :]
    assert received.count(b"\r\n") == 4 and b"\r\n\tdkim=" in prefix  # R-SEC-2: the signature's result
    assert b"Received: from mx.other.gov.vn (" in prefix and b"by mail.example.gov.vn with ESMTP id" in prefix


def test_unknown_user_relay_and_both_in_one_transaction(mx):
    with smtplib.SMTP(mx.host, mx.port("smtp")) as c:
        c.ehlo("client.test")
        c.mail("x@other.gov.vn")
        code, text = c.rcpt("nobody@example.gov.vn")
        assert (code, text[:5]) == (S550_USER, b"5.1.1")
        code, text = c.rcpt("someone@gmail.com")
        assert (code, text[:5]) == (S550_RELAY, b"5.7.1")
        code, text = c.rcpt("someone@sub.example.gov.vn")  # local domain, no such user
        assert (code, text[:5]) == (S550_USER, b"5.1.1")
        assert c.rcpt(ANNV)[0] == 250
        code, _ = c.data(b"Subject: mixed\r\n\r\nbody\r\n")
        assert code == 250


def test_smtputf8_sender_and_8bit_headers_are_kept(mx):
    before = len(inbox(mx, ANNV))
    message = "From: Nguyễn <nguyễn@bộ-khác.vn>\r\nSubject: Thư điện tử công vụ\r\n\r\nNội dung.\r\n".encode()

    async def send():
        async with aiosmtplib.SMTP(hostname=mx.host, port=mx.port("smtp"), start_tls=False) as c:
            return await c.sendmail("nguyễn@bộ-khác.vn", [ANNV], message, mail_options=["SMTPUTF8"])

    errors, _ = asyncio.run(send())
    assert errors == {}
    stored = inbox(mx, ANNV)[before]
    assert stored.endswith(message) and "Return-Path: <nguyễn@bộ-khác.vn>".encode() in stored
    assert b"with UTF8SMTP id" in stored


def test_broken_mime_is_stored_intact(mx):
    broken = (
        b'Content-Type: multipart/mixed; boundary="b1"\r\nSubject: =?utf-8?B?broken?=\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain; charset=\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64\r\n"
        b"--b1\r\nContent-Type: message/rfc822\r\n\r\nno headers end"
    )
    before = len(inbox(mx, ANNV))
    with smtplib.SMTP(mx.host, mx.port("smtp")) as c:
        c.sendmail("x@other.gov.vn", [ANNV], broken + b"\r\n")
    assert inbox(mx, ANNV)[before].endswith(broken + b"\r\n")


def test_pipelined_starttls_injection_is_discarded(mx):
    import socket

    with socket.create_connection((mx.host, mx.port("smtp")), timeout=10) as raw:
        f = raw.makefile("rb")
        assert f.readline().startswith(b"220 ")
        raw.sendall(b"EHLO client.test\r\n")
        while f.readline()[3:4] == b"-":
            pass
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.vn>\r\n")
        assert f.readline().startswith(b"220 2.0.0")
        with client_tls().wrap_socket(raw, server_hostname="mail.example.gov.vn") as tls, tls.makefile("rb") as tf:
            tls.sendall(b"EHLO client.test\r\n")
            while tf.readline()[3:4] == b"-":
                pass
            tls.sendall(f"RCPT TO:<{ANNV}>\r\n".encode())
            assert tf.readline().startswith(b"503 5.5.1")
            tls.sendall(b"QUIT\r\n")
            assert tf.readline().startswith(b"221 2.0.0")
        f.close()


def test_size_limit_at_mail_and_during_data(make_server):
    server = make_server({"limits": {"max_message_size": 20_000}})
    server.add_account(ANNV, PASSWORD)
    with smtplib.SMTP(server.host, server.port("smtp")) as c:
        c.ehlo("client.test")
        assert b"SIZE 20000" in c.ehlo_resp
        code, text = c.mail("x@other.gov.vn", ["SIZE=30000"])
        assert (code, text[:5]) == (552, b"5.3.4")
        c.rset()
        c.mail("x@other.gov.vn")
        c.rcpt(ANNV)
        code, text = c.data(b"Subject: big\r\n\r\n" + b"x" * 998 + b"\r\n" + b"y" * 25_000 + b"\r\n")
        assert (code, text[:5]) == (552, b"5.3.4")
        c.mail("x@other.gov.vn")
        c.rcpt(ANNV)
        long_line = b"Subject: long line\r\n\r\n" + b"z" * 5000 + b"\r\n"
        assert c.data(long_line)[0] == 250
    assert [m.endswith(long_line) for m in inbox(server, ANNV)] == [True]


def test_twenty_concurrent_clients_all_delivered(mx):
    before = len(inbox(mx, BINH))

    async def one(i: int):
        async with aiosmtplib.SMTP(hostname=mx.host, port=mx.port("smtp"), start_tls=False) as c:
            for j in range(5):
                errors, _ = await c.sendmail("x@other.gov.vn", [BINH], f"Subject: {i}-{j}\r\n\r\nbody {i}-{j}\r\n")
                assert errors == {}

    async def all_():
        await asyncio.gather(*(one(i) for i in range(20)))

    asyncio.run(all_())
    messages = inbox(mx, BINH)[before:]
    assert len(messages) == 100
    assert {m.rsplit(b"body ", 1)[1] for m in messages} == {f"{i}-{j}\r\n".encode() for i in range(20) for j in range(5)}


def test_submission_auth_then_local_delivery(mx):
    before = len(inbox(mx, BINH))
    with smtplib.SMTP(mx.host, mx.port("submission"), local_hostname="laptop.test") as c:
        c.starttls(context=client_tls())
        c.ehlo("laptop.test")
        token = base64.b64encode(f"\0{ANNV}\0{PASSWORD}".encode()).decode()  # smtplib: ASCII only
        assert c.docmd("AUTH", "PLAIN " + token)[0] == 235
        with pytest.raises(smtplib.SMTPSenderRefused):
            c.sendmail(BINH, [ANNV], b"Subject: spoof\r\n\r\nx\r\n")
        refused = c.sendmail(ANNV, [BINH], "Subject: Báo cáo\r\n\r\nnội dung\r\n".encode())
        assert refused == {}
    stored = inbox(mx, BINH)[before]
    assert b"with ESMTPSA id" in stored


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_swaks_pipelining_with_one_unknown_recipient_delivers_to_the_other(mx):
    before = len(inbox(mx, BINH))
    result = subprocess.run(
        ["swaks", "--server", f"{mx.host}:{mx.port('smtp')}", "--pipeline", "--to", f"ghost@{mx.domain},{BINH}",
         "--from", "van@other.gov.vn", "--header", "Subject: pipelined"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "550 5.1.1" in result.stdout and "PIPELINING" in result.stdout, result.stdout
    assert "250 2.0.0 OK" in result.stdout
    assert len(inbox(mx, BINH)) == before + 1
