"""The outbound worker over a real store (SQLite, and PostgreSQL when configured) against
scripted remote servers on loopback: delivery, DKIM, retries, DSNs, broken remotes, TLS policy,
connection limits, MX order, restarts."""

from __future__ import annotations

import asyncio
import ssl

import dkim
import pytest

from config.settings import QueueDomain
from mailserver.maintenance.tls import ensure_certificate
from smtp.dkim import DkimSigner, generate_key
from smtp.outbound.dns import Resolver
from smtp.outbound.service import OutboundService
from storage.api import BOUNCE, QUEUED
from tests.outbound_helpers import (
    SENDER, Clock, Script, eventually, inbox_messages, make_store, message, port_of, raw_remote,
    scripted_remote, settings_for, start_service,
)  # fmt: skip

S451 = "451 4.3.0 try later"
S550_USER = "550 5.1.1 no such user"
S250 = "250 2.0.0 OK"


@pytest.fixture
def store(store_url, tmp_path):
    s = make_store(store_url, tmp_path / "blobs")
    yield s
    s.close()


def queue_rows(store):
    return [(r.address, r.state, r.attempts) for m in store.queue.list() for r in m.recipients]


async def test_message_is_delivered_without_return_path_and_dkim_verifies(store, tmp_path):
    script = Script()
    remote = await scripted_remote(script)
    _path, txt = generate_key(tmp_path, "example.gov.vn", "mail")
    settings = settings_for(tmp_path, {"other.gov.vn": f"127.0.0.1:{port_of(remote)}"})
    service = await start_service(settings, store)
    try:
        blob = store.messages.put_blob(message())
        await service.enqueue(blob, SENDER, ["bob@other.gov.vn", "carol@other.gov.vn"])
        await eventually(lambda: script.received and not store.queue.list())
    finally:
        await service.stop()
        remote.close()
    (mail_from, rcpts, data, _tls), = script.received
    assert mail_from == SENDER and rcpts == ["bob@other.gov.vn", "carol@other.gov.vn"]
    assert data.startswith(b"DKIM-Signature:") and b"Return-Path" not in data
    assert data.endswith(message()[message().index(b"From:"):])  # the rest byte for byte
    keys = {b"mail._domainkey.example.gov.vn.": txt.encode()}
    assert dkim.verify(data, dnsfunc=lambda name, timeout=5: keys.get(name))
    assert not dkim.verify(data.replace(b"Subject: ", b"Subject: Re: "), dnsfunc=lambda name, timeout=5: keys.get(name))


class CountingSigner(DkimSigner):
    """The real signer, counting the messages it signs."""

    calls = 0

    def signature(self, message: bytes) -> bytes:
        self.calls += 1
        return super().signature(message)


async def test_a_message_to_two_domains_is_signed_once_with_rsa_and_ed25519(store, tmp_path):
    """Three recipients at two destinations: two transactions (one per domain, not per
    recipient) carrying the same two signatures, made once; both verify (RFC 8463)."""
    first, second = Script(), Script()
    one, two = await scripted_remote(first), await scripted_remote(second)
    _p, rsa_txt = generate_key(tmp_path, "example.gov.vn", "mail")
    _p, ed_txt = generate_key(tmp_path, "example.gov.vn", "ed25519", kind="ed25519")
    settings = settings_for(tmp_path, {"other.gov.vn": f"127.0.0.1:{port_of(one)}", "third.vn": f"127.0.0.1:{port_of(two)}"})
    signer = CountingSigner.from_settings(settings)
    service = OutboundService(settings, store, resolver=Resolver(static_only=True), signer=signer)
    await service.start()
    try:
        blob = store.messages.put_blob(message())
        await service.enqueue(blob, SENDER, ["bob@other.gov.vn", "x@third.vn", "carol@other.gov.vn"])
        await eventually(lambda: first.received and second.received and not store.queue.list())
    finally:
        await service.stop()
        one.close()
        two.close()
    (_f, rcpts1, data1, _t), = first.received
    (_f, rcpts2, data2, _t), = second.received
    assert sorted(rcpts1) == ["bob@other.gov.vn", "carol@other.gov.vn"] and rcpts2 == ["x@third.vn"]
    assert data1 == data2 and data1.count(b"DKIM-Signature:") == 2
    assert signer.calls == 1
    keys = {b"mail._domainkey.example.gov.vn.": rsa_txt.encode(), b"ed25519._domainkey.example.gov.vn.": ed_txt.encode()}
    for idx in (0, 1):
        assert dkim.DKIM(data1).verify(idx=idx, dnsfunc=lambda name, timeout=5: keys.get(name))


async def test_temporary_failure_is_retried_after_the_back_off_then_delivered(store, tmp_path):
    script = Script(rcpt=[S451, "250 2.1.5 OK"])
    remote = await scripted_remote(script)
    clock = Clock()
    settings = settings_for(tmp_path, {"other.gov.vn": f"127.0.0.1:{port_of(remote)}"}, retry_first=300)
    service = await start_service(settings, store, clock=clock)
    try:
        await service.enqueue(store.messages.put_blob(message()), SENDER, ["bob@other.gov.vn"])
        await eventually(lambda: queue_rows(store) == [("bob@other.gov.vn", QUEUED, 1)])
        (rcpt,) = store.queue.list()[0].recipients
        assert rcpt.last_code == 451 and (rcpt.next_attempt_at - clock.now).total_seconds() == pytest.approx(300, abs=1)
        await asyncio.sleep(0.5)
        assert not script.received  # not before the back-off
        clock.advance(301)
        service.wake()
        await eventually(lambda: script.received and not queue_rows(store))
    finally:
        await service.stop()
        remote.close()
    assert len(script.received) == 1


async def test_permanent_failure_puts_a_bilingual_dsn_in_the_senders_inbox(store, tmp_path):
    script = Script(rcpt=[S550_USER])
    remote = await scripted_remote(script)
    settings = settings_for(tmp_path, {"other.gov.vn": f"127.0.0.1:{port_of(remote)}"})
    service = await start_service(settings, store)
    try:
        await service.enqueue(store.messages.put_blob(message()), SENDER, ["nobody@other.gov.vn"])
        (dsn,) = await eventually(lambda: inbox_messages(store, SENDER))
        await eventually(lambda: not queue_rows(store))
    finally:
        await service.stop()
        remote.close()
    text = dsn.decode()
    assert "multipart/report; report-type=delivery-status" in text
    assert "Thư của bạn KHÔNG gửi được" in text and "could NOT be delivered" in text
    assert "Final-Recipient: rfc822; nobody@other.gov.vn" in text and "Action: failed" in text
    assert "Status: 5.1.1" in text and "Diagnostic-Code: smtp; 550 5.1.1 no such user" in text
    assert "Content-Type: text/rfc822-headers" in text and "Message-ID: <test-1@example.gov.vn>" in text


async def test_delay_warning_after_4_hours_and_failure_dsn_after_giving_up(store, tmp_path):
    script = Script(rcpt=[S451])
    remote = await scripted_remote(script)
    clock = Clock()
    settings = settings_for(tmp_path, {"other.gov.vn": f"127.0.0.1:{port_of(remote)}"},
                            retry_first=300, retry_max=4 * 3600, delay_warning_after=4 * 3600, give_up_after=5 * 86400)  # fmt: skip
    service = await start_service(settings, store, clock=clock)
    try:
        await service.enqueue(store.messages.put_blob(message()), SENDER, ["slow@other.gov.vn"])
        await eventually(lambda: queue_rows(store) == [("slow@other.gov.vn", QUEUED, 1)])
        assert inbox_messages(store, SENDER) == []
        clock.advance(4 * 3600 + 1)
        service.wake()
        (warning,) = await eventually(lambda: inbox_messages(store, SENDER))
        assert b"Action: delayed" in warning and "CHƯA gửi được".encode() in warning and b"Will-Retry-Until:" in warning
        clock.advance(5 * 86400)
        service.wake()
        msgs = await eventually(lambda: (m := inbox_messages(store, SENDER)) and len(m) == 2 and m)
        await eventually(lambda: not queue_rows(store))
    finally:
        await service.stop()
        remote.close()
    failure = msgs[1]
    assert b"Action: failed" in failure and b"Status: 4.4.7" in failure


@pytest.mark.parametrize("greeting,reply", [
    (b"220 ok\r\n", b"\x00\xff garbage that is no SMTP reply\r\n"),
    (b"999 what\r\n", None),
    (None, None),  # silence: the greeting timeout (RFC 5321 4.5.3.2.1, shortened here)
], ids=["garbage-replies", "nonsense-greeting", "hangs"])  # fmt: skip
async def test_a_broken_remote_defers_without_stopping_the_worker(store, tmp_path, greeting, reply):
    broken = await raw_remote(greeting, reply)
    script = Script()
    good = await scripted_remote(script)
    routes = {"broken.vn": f"127.0.0.1:{port_of(broken)}", "other.gov.vn": f"127.0.0.1:{port_of(good)}"}
    settings = settings_for(tmp_path, routes, connect_timeout=1, command_timeout=1)
    service = await start_service(settings, store)
    try:
        blob = store.messages.put_blob(message())
        await service.enqueue(blob, SENDER, ["x@broken.vn"])
        await eventually(lambda: queue_rows(store) == [("x@broken.vn", QUEUED, 1)])
        await service.enqueue(blob, SENDER, ["bob@other.gov.vn"])
        await eventually(lambda: script.received)
    finally:
        await service.stop()
        broken.close()
        good.close()
    assert inbox_messages(store, SENDER) == []  # temporary: no DSN


async def test_internationalised_address_needs_smtputf8_at_the_remote(store, tmp_path):
    old, new = Script(), Script()
    ascii_only = await scripted_remote(old, utf8=False)
    modern = await scripted_remote(new)
    routes = {"old.vn": f"127.0.0.1:{port_of(ascii_only)}", "new.vn": f"127.0.0.1:{port_of(modern)}"}
    service = await start_service(settings_for(tmp_path, routes), store)
    try:
        blob = store.messages.put_blob(message())
        await service.enqueue(blob, SENDER, ["bình@old.vn"])
        await service.enqueue(blob, SENDER, ["bình@new.vn"])
        (dsn,) = await eventually(lambda: inbox_messages(store, SENDER))
        await eventually(lambda: new.received and not queue_rows(store))
    finally:
        await service.stop()
        ascii_only.close()
        modern.close()
    assert old.received == [] and new.received[0][1] == ["bình@new.vn"]
    assert b"Status: 5.6.7" in dsn and "Final-Recipient: utf-8; bình@old.vn".encode() in dsn


async def test_require_tls_defers_a_plaintext_only_remote_and_uses_starttls_when_offered(store, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ensure_certificate(cert, key, "remote.test")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    plain_script, tls_script = Script(), Script()
    plain = await scripted_remote(plain_script)
    with_tls = await scripted_remote(tls_script, tls_context=ctx)
    routes = {"plain.vn": f"127.0.0.1:{port_of(plain)}", "tls.vn": f"127.0.0.1:{port_of(with_tls)}"}
    settings = settings_for(tmp_path, routes, domains={"plain.vn": QueueDomain(require_tls=True),
                                                       "tls.vn": QueueDomain(require_tls=True)})  # fmt: skip
    service = await start_service(settings, store)
    try:
        blob = store.messages.put_blob(message())
        await service.enqueue(blob, SENDER, ["a@plain.vn"])
        await service.enqueue(blob, SENDER, ["b@tls.vn"])
        await eventually(lambda: tls_script.received and queue_rows(store) == [("a@plain.vn", QUEUED, 1)])
    finally:
        await service.stop()
        plain.close()
        with_tls.close()
    assert plain_script.received == []
    assert tls_script.received[0][3] is True  # delivered inside STARTTLS
    (rcpt,) = store.queue.list()[0].recipients
    assert "STARTTLS" in rcpt.last_reply


async def test_per_domain_connection_limit_is_kept(store, tmp_path):
    script = Script(data_delay=0.3)
    remote = await scripted_remote(script)
    settings = settings_for(tmp_path, {"other.gov.vn": f"127.0.0.1:{port_of(remote)}"}, per_domain=2, concurrency=10)
    service = await start_service(settings, store)
    try:
        for i in range(6):
            await service.enqueue(store.messages.put_blob(message(subject=f"số {i}")), SENDER, [f"u{i}@other.gov.vn"])
        await eventually(lambda: len(script.received) == 6)
    finally:
        await service.stop()
        remote.close()
    assert script.max_active == 2


async def test_one_connection_carries_many_messages_even_after_a_refused_recipient(store, tmp_path):
    script = Script(rcpt=["250 2.1.5 OK", S550_USER, "250 2.1.5 OK"])
    remote = await scripted_remote(script)
    settings = settings_for(tmp_path, {"other.gov.vn": f"127.0.0.1:{port_of(remote)}"}, per_domain=1)
    queue = store.queue
    for i in range(5):  # queued before the worker starts: claimed together
        queue.enqueue(store.messages.put_blob(message(subject=f"số {i}")), SENDER, [f"u{i}@other.gov.vn"])
    service = await start_service(settings, store)
    try:
        await eventually(lambda: len(script.received) == 4 and not queue_rows(store))
    finally:
        await service.stop()
        remote.close()
    assert script.connections == 1  # RSET after the refused transaction, then MAIL again
    assert len(inbox_messages(store, SENDER)) == 1  # the DSN for u1


async def test_mx_hosts_are_tried_in_preference_order_with_a_fallback(store, tmp_path):
    script = Script()
    good = await scripted_remote(script)
    port = port_of(good)
    dead = await raw_remote(None)
    dead_port = port_of(dead)
    dead.close()  # nothing listens there any more: connection refused
    del dead_port
    resolver = Resolver({
        "mx.vn": {"mx": ["20 backup.mx.vn", "10 primary.mx.vn"]},
        "primary.mx.vn": {"a": ["127.0.0.2"]},  # no server on 127.0.0.2:port → refused
        "backup.mx.vn": {"a": ["127.0.0.1"]},
        "nomx.vn": {"a": ["127.0.0.1"]},  # implicit MX
        "nullmx.vn": {"mx": ["0 ."]},
    }, static_only=True)  # fmt: skip
    settings = settings_for(tmp_path, {})
    service = await start_service(settings, store, resolver=resolver, mx_port=port)
    try:
        blob = store.messages.put_blob(message())
        await service.enqueue(blob, SENDER, ["a@mx.vn", "b@nomx.vn", "c@nullmx.vn", "d@nxdomain.vn"])
        await eventually(lambda: len(script.received) == 2 and not queue_rows(store))
    finally:
        await service.stop()
        good.close()
    assert sorted(r for _f, rcpts, _d, _t in script.received for r in rcpts) == ["a@mx.vn", "b@nomx.vn"]
    dsns = inbox_messages(store, SENDER)
    text = b"".join(dsns).decode()
    assert "Status: 5.1.10" in text and "Status: 5.1.2" in text  # null MX (RFC 7505), no such domain


async def test_restart_in_the_middle_of_the_retry_schedule_loses_nothing(store_url, tmp_path):
    script = Script()
    remote = await scripted_remote(script)
    port = port_of(remote)
    remote.close()
    await remote.wait_closed()
    clock = Clock()
    settings = settings_for(tmp_path, {"other.gov.vn": f"127.0.0.1:{port}"}, retry_first=300)
    store = make_store(store_url, tmp_path / "blobs")
    service = await start_service(settings, store, clock=clock)
    blob = store.messages.put_blob(message())
    for i in range(3):
        await service.enqueue(blob, SENDER, [f"u{i}@other.gov.vn"])
    await eventually(lambda: sorted(queue_rows(store)) == [(f"u{i}@other.gov.vn", QUEUED, 1) for i in range(3)])
    await service.stop()
    store.close()

    remote = await asyncio.get_running_loop().create_server(remote._protocol_factory, "127.0.0.1", port)
    store = make_store(store_url, tmp_path / "blobs")
    clock.advance(301)
    service = await start_service(settings, store, clock=clock)
    try:
        await eventually(lambda: len(script.received) == 3 and not queue_rows(store))
    finally:
        await service.stop()
        remote.close()
        store.close()
    assert sorted(r for _f, rcpts, _d, _t in script.received for r in rcpts) == [f"u{i}@other.gov.vn" for i in range(3)]


async def test_a_claim_left_by_a_dead_process_is_taken_again_after_its_lease(store, tmp_path):
    queue = store.queue
    queue.enqueue(store.messages.put_blob(message()), SENDER, ["bob@other.gov.vn"])
    clock = Clock()
    assert len(queue.claim(10, owner="dead:1", lease=600, now=clock.now)) == 1
    assert queue.claim(10, owner="other:2", lease=600, now=clock.now) == []
    clock.advance(601)
    assert [c.domain for c in queue.claim(10, owner="other:2", lease=600, now=clock.now)] == ["other.gov.vn"]


async def test_stop_returns_when_a_wake_up_lands_with_it(store, tmp_path):
    """A wake-up in the same tick as stop() (a run finishing, a bounce recorded) must not keep the
    loop alive: Python 3.11's wait_for swallowed that cancel and stop() hung (CI, 300 s)."""
    service = await start_service(settings_for(tmp_path, {}, poll=60), store)
    await asyncio.sleep(0.2)  # the loop is asleep, waiting to be woken
    service.wake()
    async with asyncio.timeout(5):
        await service.stop()
    assert service._main.done()


async def test_operator_retry_and_delete(store, tmp_path):
    queue = store.queue
    clock = Clock()
    first = queue.enqueue(store.messages.put_blob(message()), SENDER, ["a@x.vn"], now=clock.now)
    second = queue.enqueue(store.messages.put_blob(message(subject="2")), SENDER, ["b@y.vn"], now=clock.now)
    (claim_a, claim_b) = queue.claim(10, owner="me", lease=60, now=clock.now)
    from storage.api import Outcome

    later = clock.now + __import__("datetime").timedelta(hours=1)
    queue.record([Outcome(claim_a.message.recipients[0].id, QUEUED, 451, "busy", "h", later),
                  Outcome(claim_b.message.recipients[0].id, BOUNCE, 550, "no", "h")], now=clock.now)  # fmt: skip
    assert queue.next_due(clock.now) == later
    assert queue.retry(first, now=clock.now) == 1 and queue.next_due(clock.now) == clock.now
    assert [m.id for m in queue.owed_dsns()] == [second]
    queue.delete(first)
    assert [m.id for m in queue.list()] == [second]


def _decoded(data: bytes, name: str) -> str:
    import email
    import email.policy

    return str(email.message_from_bytes(data, policy=email.policy.default)[name])


async def test_utf8_header_is_downgraded_for_a_remote_without_smtputf8_and_signed_over_the_sent_bytes(store, tmp_path):
    """Raw UTF-8 (RFC 6532) header fields arrive as RFC 2047 words / IDNA at an old
    remote, decode back to the NFC text, DKIM verifies; a modern remote gets the UTF-8 as stored."""
    import unicodedata

    old, new = Script(), Script()
    ascii_only = await scripted_remote(old, utf8=False)
    modern = await scripted_remote(new)
    _path, txt = generate_key(tmp_path, "example.gov.vn", "mail")
    routes = {"old.vn": f"127.0.0.1:{port_of(ascii_only)}", "new.vn": f"127.0.0.1:{port_of(modern)}"}
    service = await start_service(settings_for(tmp_path, routes), store)
    subject = unicodedata.normalize("NFD", "Tờ trình số 06 về chuyển đổi số")  # as some clients send it
    raw = message(subject=subject).replace(b"To: <bob@other.gov.vn>", "To: Trần Thị Bình <binh@bộ-tài-chính.vn>".encode())
    try:
        blob = store.messages.put_blob(raw)
        await service.enqueue(blob, SENDER, ["binh@old.vn"])
        await service.enqueue(blob, SENDER, ["binh@new.vn"])
        await eventually(lambda: old.received and new.received and not queue_rows(store))
    finally:
        await service.stop()
        ascii_only.close()
        modern.close()
    keys = {b"mail._domainkey.example.gov.vn.": txt.encode()}
    sent_old, sent_new = old.received[0][2], new.received[0][2]
    head = sent_old[: sent_old.index(b"\r\n\r\n")]
    assert head.isascii() and b"=?UTF-8?B?" in head
    assert _decoded(sent_old, "Subject") == unicodedata.normalize("NFC", subject)
    assert _decoded(sent_old, "From") == f"Nguyễn Văn An <{SENDER}>"
    assert _decoded(sent_old, "To") == "Trần Thị Bình <binh@xn--b-ti-chnh-s1a1mq349a.vn>"
    assert sent_old.endswith(b"\r\n\r\n" + "Nội dung báo cáo.\r\n".encode())  # the body untouched
    assert dkim.verify(sent_old, dnsfunc=lambda name, timeout=5: keys.get(name))
    assert sent_new.endswith(raw[raw.index(b"From:"):])  # byte for byte with SMTPUTF8
    assert dkim.verify(sent_new, dnsfunc=lambda name, timeout=5: keys.get(name))


async def test_utf8_local_part_in_the_header_still_bounces_5_6_7_at_a_remote_without_smtputf8(store, tmp_path):
    old = Script()
    ascii_only = await scripted_remote(old, utf8=False)
    service = await start_service(settings_for(tmp_path, {"old.vn": f"127.0.0.1:{port_of(ascii_only)}"}), store)
    try:
        await service.enqueue(store.messages.put_blob(message(to="bình@old.vn")), SENDER, ["binh@old.vn"])
        (dsn,) = await eventually(lambda: inbox_messages(store, SENDER))
        await eventually(lambda: not queue_rows(store))
    finally:
        await service.stop()
        ascii_only.close()
    assert old.received == []
    assert b"Status: 5.6.7" in dsn and b"non-ASCII local part" in dsn
