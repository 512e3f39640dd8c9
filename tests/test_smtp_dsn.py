"""RFC 3461/3464 delivery status notifications: the DSN parameters on MX and submission, kept
with queued mail, carried to a next hop that offers DSN, and honoured in our own reports
(success when asked, none for NEVER, RET=FULL/HDRS, ENVID, ORCPT), Vietnamese then English.
Real sockets: the served server, two servers relaying to each other, scripted remotes."""

from __future__ import annotations

import smtplib

import pytest

from smtp.dsn_params import encode_orcpt, parse_envid, parse_notify, parse_orcpt, parse_ret, wants, xtext_decode, xtext_encode
from smtp.outbound import dsn
from storage.api import EnvelopeOptions, RecipientDsn
from tests.outbound_helpers import (
    SENDER, Script, eventually, inbox_messages, make_store, message, port_of, scripted_remote, settings_for,
    start_service,
)  # fmt: skip

PASSWORD = "Mat-khau-2026!"
RCPT = "bob@other.gov.vn"
S250 = 250
S501 = 501
S555 = 555
S550_USER = "550 5.1.1 no such user"


# -- pure: parameters and which reports are owed ----------------------------------------------------
def test_xtext_round_trip_and_bad_xtext_is_refused():
    assert xtext_decode("abc+2Bdef+3D") == "abc+def="
    assert xtext_encode("a+b=c d") == "a+2Bb+3Dc+20d"
    assert xtext_decode(xtext_encode("thư-việt@ví.dụ")) == "thư-việt@ví.dụ"
    for bad in ("a+2b", "a+", "a=b", "a b"):
        with pytest.raises(ValueError):
            xtext_decode(bad)


def test_notify_ret_envid_orcpt_parsing():
    assert parse_notify("delay,success") == "SUCCESS,DELAY"
    assert parse_notify("NEVER") == "NEVER"
    for bad in ("NEVER,SUCCESS", "SOMETIMES", "", "SUCCESS,SUCCESS", True):
        with pytest.raises(ValueError):
            parse_notify(bad)
    assert parse_ret("hdrs") == "HDRS" and parse_ret("FULL") == "FULL"
    with pytest.raises(ValueError):
        parse_ret("BODY")
    assert parse_envid("QQ+2B314") == "QQ+314"
    with pytest.raises(ValueError):
        parse_envid("x" * 101)
    assert parse_orcpt("rfc822;bob+2Bx@example.org") == "rfc822;bob+x@example.org"
    assert encode_orcpt("rfc822;bob+x@example.org") == "rfc822;bob+2Bx@example.org"
    for bad in ("bob@example.org", ";bob@example.org", "rfc822;"):
        with pytest.raises(ValueError):
            parse_orcpt(bad)


def test_which_reports_are_owed():
    assert wants(None, dsn.FAILED) and wants(None, dsn.DELAYED) and not wants(None, dsn.DELIVERED)
    assert not any(wants("NEVER", a) for a in (dsn.FAILED, dsn.DELAYED, dsn.DELIVERED, dsn.RELAYED))
    assert wants("SUCCESS", dsn.DELIVERED) and wants("SUCCESS", dsn.RELAYED) and not wants("SUCCESS", dsn.FAILED)
    assert wants("FAILURE", dsn.FAILED) and not wants("FAILURE", dsn.DELAYED)


def test_report_carries_envid_orcpt_and_the_whole_message_for_ret_full():
    import datetime as _dt

    now = _dt.datetime.now(_dt.UTC)
    original = message(body="Toàn văn thư.\r\n")
    report = dsn.RecipientReport(RCPT, dsn.FAILED, "5.1.1", "550 5.1.1 no such user", None, now, "rfc822;Bob@Other.gov.vn")
    full = dsn.build_dsn(hostname="mail.example.gov.vn", sender=SENDER, action=dsn.FAILED, reports=[report],
                         original_headers=dsn.header_block(original), arrival=now, envid="QQ314", full_message=original).decode()  # fmt: skip
    assert "Original-Envelope-Id: QQ314" in full and "Original-Recipient: rfc822; Bob@Other.gov.vn" in full
    assert "Content-Type: message/rfc822" in full and "Toàn văn thư." in full
    hdrs = dsn.build_dsn(hostname="mail.example.gov.vn", sender=SENDER, action=dsn.FAILED, reports=[report],
                         original_headers=dsn.header_block(original), arrival=now).decode()  # fmt: skip
    assert "text/rfc822-headers" in hdrs and "Toàn văn thư." not in hdrs


# -- the served server: syntax and local delivery -----------------------------------------------------
def test_ehlo_offers_dsn_and_bad_parameters_get_clear_replies(server):
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=30) as c:
        c.ehlo("client.test")
        assert c.has_extn("dsn")
        assert c.docmd("MAIL FROM:<a@x.test> RET=HDRS ENVID=abc")[0] == S250
        code, text = c.docmd(f"RCPT TO:<nobody@{server.domain}> NOTIFY=SOMETIMES")
        assert code == S501 and b"NOTIFY" in text
        assert c.docmd(f"RCPT TO:<nobody@{server.domain}> FOO=BAR")[0] == S555
        c.rset()
        code, text = c.docmd("MAIL FROM:<a@x.test> RET=BODY")
        assert code == S501 and b"RET" in text
        assert c.docmd("MAIL FROM:<a@x.test> ENVID=a+zz")[0] == S501


def test_local_delivery_with_notify_success_gives_a_delivered_report(server):
    sender, rcpt = f"dsn-sender@{server.domain}", f"dsn-rcpt@{server.domain}"
    server.add_account(sender, PASSWORD)
    server.add_account(rcpt, PASSWORD, name="Trần Thị Bình")
    body = f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: Xin xác nhận\r\nMessage-ID: <dsn-local@x>\r\n\r\nhello\r\n"
    with smtplib.SMTP(server.host, server.port("submission"), timeout=30) as c:
        c.login(sender, PASSWORD)
        c.sendmail(sender, [rcpt], body.encode(), mail_options=["RET=HDRS", "ENVID=local+2B1"],
                   rcpt_options=[f"NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;{rcpt}"])  # fmt: skip
    store = server.open_store()
    try:
        (report,) = eventually_sync(lambda: inbox_messages(store, sender))
        assert len(inbox_messages(store, rcpt)) == 1
    finally:
        store.close()
    text = report.decode()
    assert "Action: delivered" in text and "Status: 2.0.0" in text and "Original-Envelope-Id: local+1" in text
    assert f"Original-Recipient: rfc822; {rcpt}" in text and f"Final-Recipient: rfc822; {rcpt}" in text
    assert text.index("ĐÃ được chuyển") < text.index("WAS delivered")  # Vietnamese first
    assert "Message-ID: <dsn-local@x>" in text and "hello" not in text.split("text/rfc822-headers")[1]


def eventually_sync(predicate, timeout: float = 30.0):
    from tests.conftest import wait_until

    return wait_until(predicate, timeout=timeout)


# -- the outbound queue -----------------------------------------------------------------------------
@pytest.fixture
def store(store_url, tmp_path):
    s = make_store(store_url, tmp_path / "blobs")
    yield s
    s.close()


def queued(store):
    return [r for m in store.queue.list() for r in m.recipients]


async def test_parameters_are_kept_in_the_queue(store, tmp_path):
    options = EnvelopeOptions("FULL", "env-1", False, {RCPT: RecipientDsn("SUCCESS,DELAY", f"rfc822;{RCPT}")})
    message_id = store.queue.enqueue(store.messages.put_blob(message()), SENDER, [RCPT, "c@other.gov.vn"], options=options)
    shown = store.queue.show(message_id)
    assert (shown.ret, shown.envid, shown.requiretls) == ("FULL", "env-1", False)
    assert [(r.notify, r.orcpt) for r in shown.recipients] == [("SUCCESS,DELAY", f"rfc822;{RCPT}"), (None, None)]


async def test_hop_without_dsn_gets_no_parameters_and_notify_success_gives_a_relayed_report(store, tmp_path):
    script = Script()  # aiosmtpd: no DSN, and it refuses RET/ENVID/NOTIFY with 555
    remote = await scripted_remote(script)
    settings = settings_for(tmp_path, {"other.gov.vn": f"127.0.0.1:{port_of(remote)}"})
    service = await start_service(settings, store)
    try:
        options = EnvelopeOptions("HDRS", "rel-1", False, {RCPT: RecipientDsn("SUCCESS", None)})
        await service.enqueue(store.messages.put_blob(message()), SENDER, [RCPT], options=options)
        (report,) = await eventually(lambda: inbox_messages(store, SENDER))
    finally:
        await service.stop()
        remote.close()
    assert len(script.received) == 1
    text = report.decode()
    assert "Action: relayed" in text and "Original-Envelope-Id: rel-1" in text


async def test_notify_never_suppresses_the_failure_report(store, tmp_path):
    remote = await scripted_remote(Script(rcpt=[S550_USER]))
    settings = settings_for(tmp_path, {"other.gov.vn": f"127.0.0.1:{port_of(remote)}"})
    service = await start_service(settings, store)
    try:
        options = EnvelopeOptions(None, None, False, {RCPT: RecipientDsn("NEVER", None)})
        await service.enqueue(store.messages.put_blob(message()), SENDER, [RCPT], options=options)
        await eventually(lambda: not queued(store))
        # a second message without NOTIFY bounces with a report: the first one got none
        await service.enqueue(store.messages.put_blob(message(subject="lần hai")), SENDER, ["x@other.gov.vn"])
        (report,) = await eventually(lambda: inbox_messages(store, SENDER))
        await eventually(lambda: not queued(store))
    finally:
        await service.stop()
        remote.close()
    text = report.decode()
    assert "Final-Recipient: rfc822; x@other.gov.vn" in text and f"Final-Recipient: rfc822; {RCPT}" not in text


async def test_ret_full_returns_the_whole_message_in_the_failure_report(store, tmp_path):
    remote = await scripted_remote(Script(rcpt=[S550_USER]))
    settings = settings_for(tmp_path, {"other.gov.vn": f"127.0.0.1:{port_of(remote)}"})
    service = await start_service(settings, store)
    try:
        options = EnvelopeOptions("FULL", "full-1", False, {RCPT: RecipientDsn(None, f"rfc822;{RCPT}")})
        await service.enqueue(store.messages.put_blob(message(body="Toàn văn công văn.\r\n")), SENDER, [RCPT], options=options)
        (report,) = await eventually(lambda: inbox_messages(store, SENDER))
    finally:
        await service.stop()
        remote.close()
    text = report.decode()
    assert "Action: failed" in text and "Content-Type: message/rfc822" in text and "Toàn văn công văn." in text
    assert f"Original-Recipient: rfc822; {RCPT}" in text and "Original-Envelope-Id: full-1" in text


# -- two servers: the parameters travel, the next hop reports ----------------------------------------
@pytest.fixture
def pair(make_server):
    b = make_server({"domains": ["other.gov.vn"], "dns": {"static_only": True}}, start=False)
    a = make_server({"routes": {"other.gov.vn": f"127.0.0.1:{b.port('smtp')}"}, "dns": {"static_only": True}})
    b.config_path.write_text(b.config_path.read_text() + f"routes:\n  example.gov.vn: 127.0.0.1:{a.port('smtp')}\n")
    from config.loader import load_settings

    b.settings = load_settings(b.config_path)
    b.start()
    b.add_account(RCPT, PASSWORD, name="Trần Thị Bình")
    a.add_account(SENDER, PASSWORD)
    return a, b


async def test_notify_success_travels_to_the_next_hop_which_reports_delivery(pair):
    a, b = pair
    body = f"From: <{SENDER}>\r\nTo: <{RCPT}>\r\nSubject: Công văn cần xác nhận\r\nMessage-ID: <dsn-pair@x>\r\n\r\nhello\r\n"
    with smtplib.SMTP(a.host, a.port("submission"), timeout=30) as c:
        c.login(SENDER, PASSWORD)
        c.sendmail(SENDER, [RCPT], body.encode(), mail_options=["RET=HDRS", "ENVID=pair-1"],
                   rcpt_options=[f"NOTIFY=SUCCESS ORCPT=rfc822;{RCPT}"])  # fmt: skip
    store_a, store_b = a.open_store(), b.open_store()
    try:
        await eventually(lambda: inbox_messages(store_b, RCPT), timeout=60)
        (report,) = await eventually(lambda: inbox_messages(store_a, SENDER), timeout=60)
    finally:
        store_a.close()
        store_b.close()
    text = report.decode()
    # B reported (it got NOTIFY, ORCPT and ENVID); A, seeing B offer DSN, sent no "relayed" report
    assert "Reporting-MTA: dns; mail.example.gov.vn" in text and "Action: delivered" in text
    assert "Original-Envelope-Id: pair-1" in text and f"Original-Recipient: rfc822; {RCPT}" in text
    assert "Action: relayed" not in text
