"""Quota on the SMTP path without a database: the bilingual reply texts (smtp/quota.py), the RCPT
and DATA checks over the fake store and fake quota (tests/fakes.py), and the From: parser."""

from __future__ import annotations

import base64
import io
import ssl

import pytest

from config.settings import Dns, Listener, Listeners, Settings
from mailserver.maintenance.tls import ensure_certificate
from quota import Decision, QuotaLimits
from smtp import quota as q
from smtp import replies
from smtp.pipeline.checks.from_header import from_addresses
from smtp.service import start_smtp
from tests.fakes import FakeQuota, FakeStore
from tests.test_smtp_session import LOCAL, OTHER, Dialogue, Mx

MiB = 1024**2
S250 = "250 2.0.0"
S452_QUOTA = "452-4.2.2 "
S552_ATTACH = "552 5.3.4"
S552_MAILBOX = "552 5.2.2"


@pytest.mark.parametrize(
    "vi, ascii_",
    [
        ("Hộp thư đã đầy", "Hop thu da day"),
        ("ĐƠN VỊ Văn phòng", "DON VI Van phong"),
        ("Tổng dung lượng tập tin đính kèm", "Tong dung luong tap tin dinh kem"),
        ("Nguyễn Thị Ửng", "Nguyen Thi Ung"),
    ],
)
def test_ascii_vi_removes_tones_and_marks_and_maps_d_stroke(vi, ascii_):
    assert q.ascii_vi(vi) == ascii_


def test_bilingual_reply_is_vietnamese_then_english_each_line_with_its_codes():
    reply = q.bilingual("452", "4.2.2", "Hộp thư đầy.", "Mailbox full.", utf8=False)
    assert reply == "452-4.2.2 Hop thu day.\r\n452 4.2.2 Mailbox full."
    assert replies.enhance(reply) == reply
    assert q.bilingual("452", "4.2.2", "Hộp thư đầy.", "Mailbox full.", utf8=True).startswith("452-4.2.2 Hộp thư đầy.")


def test_rcpt_reply_is_452_when_full_now_and_552_when_the_message_never_fits():
    full = Decision(ok=False, reason="mailbox_full", resource="storage", used=2 * 1024**3, limit=2 * 1024**3, requested=1)
    assert q.rcpt_refused(full, LOCAL, utf8=False).startswith("452-4.2.2 Hop thu <annv@example.gov.vn> da day")
    never = Decision(ok=False, reason="mailbox_full", resource="storage", used=0, limit=10, requested=11, permanent=True)
    assert q.rcpt_refused(never, LOCAL, utf8=False).splitlines()[1].startswith("552 5.2.2 The message (11 B (11 bytes))")


def test_attachment_reply_names_the_limit_and_the_measured_size_in_both_languages():
    d = Decision(ok=False, reason="attachments_too_big", resource="attachments", limit=20 * MiB, requested=20 * MiB + 1, permanent=True)
    vi, en = q.attachments_refused(d, utf8=True).split("\r\n")
    assert vi == "552-5.3.4 Tổng dung lượng tập tin đính kèm 20.00 MiB (20971521 bytes) vượt quá giới hạn 20 MiB (20971520 bytes) cho mỗi thư."
    assert en == "552 5.3.4 The attachments total 20.00 MiB (20971521 bytes), over the limit of 20 MiB (20971520 bytes) per message."


@pytest.mark.parametrize(
    "head, expected",
    [
        (b"From: =?utf-8?b?VHLhuqduIELDrG5o?= <binh@example.gov.vn>\r\nSubject: x\r\n\r\nbody", ["binh@example.gov.vn"]),
        (b"From: a@example.gov.vn,\r\n b@example.gov.vn\r\n\r\n", ["a@example.gov.vn", "b@example.gov.vn"]),
        (b"Subject: no from\r\n\r\n", []),
        (b"From: undisclosed\r\n\r\n", None),
    ],
)
def test_from_addresses_reads_every_mailbox_of_the_from_fields(head, expected):
    assert from_addresses(io.BytesIO(head)) == expected


@pytest.fixture
async def quota_mx(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ensure_certificate(cert, key, "mx.test")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    store = FakeStore()
    local, other = store.add(LOCAL), store.add(OTHER)
    fake = FakeQuota(limits={other.id: QuotaLimits(1000, 1 * MiB)}, used={other.id: 1000})
    settings = Settings(hostname="mx.test", data_dir=tmp_path, dns=Dns(static_only=True),
                        listeners=Listeners(smtp=Listener(address="127.0.0.1", port=0)))  # fmt: skip
    (server,) = await start_smtp(settings, store, None, tls, quota=fake)
    yield Mx(server.sockets[0].getsockname()[1], store, tls), fake, local, other
    server.close()


def attachment_message(decoded: int) -> bytes:
    data = base64.encodebytes(b"\0" * decoded).replace(b"\n", b"\r\n")
    return (b'Subject: a\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n'
            b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + data + b"--b--\r\n")  # fmt: skip


async def test_size_advertised_is_the_quotas_and_full_mailbox_is_452_per_recipient(quota_mx):
    mx, fake, local, other = quota_mx
    d = await Dialogue.open(mx)
    assert f"250-SIZE {fake.smtp_size()}" in await d.cmd("EHLO client.test")
    assert (await d.cmd(f"MAIL FROM:<x@other.gov.vn> SIZE={fake.smtp_size() + 1}")).startswith("552 5.3.4")
    assert (await d.cmd("MAIL FROM:<x@other.gov.vn> SIZE=100")).startswith("250")
    assert (await d.cmd(f"RCPT TO:<{OTHER}>")).startswith(S452_QUOTA)
    assert (await d.cmd(f"RCPT TO:<{LOCAL}>")).startswith("250")
    await d.cmd("DATA")
    assert (await d.cmd(b"Subject: s\r\n\r\nbody\r\n.")).startswith(S250)
    (delivered,) = mx.store.delivered
    assert delivered.account_ids == [local.id] and delivered.quota_limits == {local.id: 2 * 1024**3}
    await d.close()


async def test_attachments_over_one_recipients_limit_deliver_to_the_others_and_bounce_it(quota_mx):
    mx, fake, local, other = quota_mx
    fake.used.clear()
    fake.limits[other.id] = QuotaLimits(None, 1 * MiB)
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    await d.cmd(f"MAIL FROM:<{LOCAL}>")
    await d.cmd(f"RCPT TO:<{LOCAL}>")
    await d.cmd(f"RCPT TO:<{OTHER}>")
    await d.cmd("DATA")
    assert (await d.cmd(attachment_message(MiB + 1) + b".")).startswith(S250)
    message, dsn = mx.store.delivered
    assert message.account_ids == [local.id] and dsn.account_ids == [local.id]
    assert b"Final-Recipient: rfc822; binhtt@example.gov.vn" in dsn.blob and b"Status: 5.3.4" in dsn.blob
    # over every recipient's limit: 552 5.3.4, nothing stored
    await d.cmd(f"MAIL FROM:<{LOCAL}>")
    await d.cmd(f"RCPT TO:<{OTHER}>")
    await d.cmd("DATA")
    reply = await d.cmd(attachment_message(MiB + 1) + b".")
    assert reply.startswith("552-5.3.4 ") and "(1048577 bytes)" in reply and len(mx.store.delivered) == 2
    await d.close()


@pytest.mark.parametrize("decoded", [100, 200 * 1024])  # parsed on the loop / in a worker thread
async def test_each_message_is_parsed_once_for_the_attachment_check_and_storing(quota_mx, decoded):
    """The attachment check parses the message; delivery is handed that parse (put_blob(parsed=))
    instead of parsing it again."""
    mx, fake, local, other = quota_mx
    d = await Dialogue.open(mx)
    await d.cmd("EHLO client.test")
    await d.cmd(f"MAIL FROM:<{OTHER}>")
    await d.cmd(f"RCPT TO:<{LOCAL}>")
    await d.cmd("DATA")
    assert (await d.cmd(attachment_message(decoded) + b".")).startswith(S250)
    assert (mx.store.parses, mx.store.given_parsed) == (1, 1)
    await d.close()
