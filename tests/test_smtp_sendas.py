"""Submission on the real server (tests/conftest.py ``Server``) with the organisation model:
send-as through delegation (R-BOX-2, R-ACC-1: 553 5.7.1 otherwise, for the envelope and
the From: header), the audit of send-as, SASL PLAIN with an authorization identity, AUTH failures
(535 5.7.8 with the same delay whether the account exists, 501 5.5.2, 530 5.7.0), header hygiene,
and remote recipients handed to the outbound queue."""

from __future__ import annotations

import base64
import re
import smtplib
import time

import pytest

from storage.api import Right
from tests.conftest import BACKENDS, Server

pytestmark = pytest.mark.requirement("R-ACC-1")

PASSWORD = "Mat-khau-2026!"
HEAD = "truongvp@example.gov.vn"
DELEGATE = "thuky@example.gov.vn"  # delegated with read + send-as
READER = "docvien@example.gov.vn"  # delegated with read only
OUTSIDER = "nguoingoai@example.gov.vn"
BINH = "binhtt@example.gov.vn"
UNIT = "vanphong@example.gov.vn"
S235, S250, S501, S530, S535, S553 = 235, 250, 501, 530, 535, 553
SENDER_REFUSED = b"5.7.1"
AUTH_FAILED = b"5.7.8"
BAD_BASE64 = b"5.5.2"
AUTH_FIRST = b"5.7.0"


@pytest.fixture(scope="module", params=BACKENDS)
def srv(request, tmp_path_factory):
    server = Server(tmp_path_factory.mktemp(f"sendas-{request.param}"), request.param)
    try:
        server.start()
        for address in (HEAD, DELEGATE, READER, OUTSIDER, BINH):
            server.add_account(address, PASSWORD)
        store = server.open_store()
        try:
            org = store.org
            unit = org.add_unit("Văn phòng", "vp", UNIT, None, head_account_id=store.accounts.get_account(HEAD).id)
            org.delegate(unit.account.id, store.accounts.get_account(DELEGATE).id, {Right.READ, Right.SEND_AS})
            org.delegate(unit.account.id, store.accounts.get_account(READER).id, {Right.READ})
        finally:
            store.close()
        yield server
    finally:
        server.destroy()


def plain(authzid: str, user: str, password: str) -> str:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


def client(srv: Server) -> smtplib.SMTP:
    c = smtplib.SMTP(srv.host, srv.port("submission"), local_hostname="client.test", timeout=30)
    c.starttls()
    c.ehlo("client.test")
    return c


def letter(sender: str, extra: str = "") -> bytes:
    return f"From: <{sender}>\r\nTo: <{BINH}>\r\n{extra}Subject: Công văn\r\n\r\nKính gửi anh Bình.\r\n".encode()


def inbox(srv: Server, address: str) -> list[bytes]:
    store = srv.open_store()
    try:
        folder = store.folders.get_folder(store.accounts.get_account(address).id, "INBOX")
        uids = store.messages.open_view(folder.id, claim_recent=False).uids
        return [store.messages.read_blob(m.blob) for m in store.messages.fetch(folder.id, uids)]
    finally:
        store.close()


def audit(srv: Server) -> list:
    store = srv.open_store()
    try:
        return store.org.audit_log(store.accounts.get_account(UNIT).id)
    finally:
        store.close()


def submit(c: smtplib.SMTP, sender: str, rcpts: list[str], message: bytes) -> tuple[int, bytes]:
    code, text = c.mail(sender)
    if code != S250:
        return code, text
    for r in rcpts:
        assert c.rcpt(r)[0] == S250
    return c.data(message)


def tx_id(reply: bytes) -> str:
    return re.search(rb"id=([0-9a-f]+)", reply).group(1).decode()


@pytest.mark.parametrize("user", [DELEGATE, HEAD])
def test_head_and_send_as_delegate_send_as_the_unit_and_it_is_audited(srv, user):
    before = len(inbox(srv, BINH))
    with client(srv) as c:
        c.login(user, PASSWORD)
        code, reply = submit(c, UNIT, [BINH], letter(UNIT))
    assert code == S250
    assert len(inbox(srv, BINH)) == before + 1 and f"From: <{UNIT}>".encode() in inbox(srv, BINH)[-1]
    entry = next(e for e in audit(srv) if e.action == "send-as" and e.detail == f"id={tx_id(reply)}")
    assert entry.actor == user and entry.mailbox == UNIT


def test_without_send_as_the_unit_address_is_553_in_the_envelope_and_in_from(srv):
    with client(srv) as c:
        c.login(READER, PASSWORD)
        code, text = c.mail(UNIT)
        assert (code, text[:5]) == (S553, SENDER_REFUSED)
        c.rset()
        code, text = submit(c, READER, [BINH], letter(UNIT))  # own envelope, unit in From:
        assert (code, text[:5]) == (S553, SENDER_REFUSED) and b"From:" in text
        c.rset()
        code, text = submit(c, READER, [BINH], f"From: <{READER}>, <{BINH}>\r\n\r\nx\r\n".encode())
        assert (code, text[:5]) == (S553, SENDER_REFUSED)  # every From: address counts
        c.rset()
        assert submit(c, READER, [BINH], letter(READER))[0] == S250
    with client(srv) as c:
        c.login(OUTSIDER, PASSWORD)
        assert c.mail(HEAD)[0] == S553 and c.mail(BINH)[0] == S553


def test_sasl_plain_authorization_identity_acts_as_the_unit(srv):
    with client(srv) as c:
        code, _ = c.docmd("AUTH", "PLAIN " + plain(UNIT, DELEGATE, PASSWORD))
        assert code == S235
        assert submit(c, UNIT, [BINH], letter(UNIT))[0] == S250
    assert any(e.action == "login" and e.actor == DELEGATE for e in audit(srv))
    with client(srv) as c:  # a read-only delegate may log in as the unit but not send as it
        assert c.docmd("AUTH", "PLAIN " + plain(UNIT, READER, PASSWORD))[0] == S235
        assert c.mail(UNIT)[0] == S553


@pytest.mark.parametrize("authzid", [UNIT, HEAD, "ghost@example.gov.vn"])
def test_authorization_identity_without_the_right_is_535(srv, authzid):
    with client(srv) as c:
        code, text = c.docmd("AUTH", "PLAIN " + plain(authzid, OUTSIDER, PASSWORD))
    assert (code, text[:5]) == (S535, AUTH_FAILED)


def test_auth_failures_take_the_same_time_whether_or_not_the_account_exists(srv):
    def failure(user: str) -> float:
        with client(srv) as c:
            start = time.monotonic()
            code, text = c.docmd("AUTH", "PLAIN " + plain("", user, "wrong-password-1"))
            elapsed = time.monotonic() - start
        assert (code, text[:5]) == (S535, AUTH_FAILED)
        return elapsed

    existing = [failure(BINH) for _ in range(3)]
    missing = [failure("khongco@example.gov.vn") for _ in range(3)]
    assert min(existing + missing) >= 0.9  # the floor (smtp/submission.py AUTH_FAILURE_DELAY)
    assert abs(sum(existing) / 3 - sum(missing) / 3) < 0.25


def test_malformed_base64_is_501_and_mail_before_auth_is_530(srv):
    with client(srv) as c:
        code, text = c.mail(BINH)
        assert (code, text[:5]) == (S530, AUTH_FIRST)
        code, text = c.docmd("AUTH", "PLAIN %%%not-base64")
        assert (code, text[:5]) == (S501, BAD_BASE64)


def test_submission_header_hygiene_removes_bcc_adds_date_and_message_id_keeps_the_rest(srv):
    message = f"From: <{BINH}>\r\nTo: <{BINH}>\r\nBcc: <{HEAD}>\r\nSubject: Mật khẩu\r\n\r\nNội dung.\r\n".encode()
    with client(srv) as c:
        c.login(BINH, PASSWORD)
        assert submit(c, BINH, [BINH, HEAD], message)[0] == S250
    stored = inbox(srv, HEAD)[-1]
    head = stored[: stored.index(b"\r\n\r\n")]
    assert b"\r\nBcc:" not in head and b"\r\nDate: " in head and b"\r\nMessage-ID: <" in head
    assert f"From: <{BINH}>\r\nTo: <{BINH}>\r\nSubject: Mật khẩu\r\n".encode() in stored
    assert stored.endswith("\r\n\r\nNội dung.\r\n".encode())
    complete = (f"From: <{BINH}>\r\nTo: <{HEAD}>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0700\r\n"
                "Message-ID: <x1@example.gov.vn>\r\nSubject: nguyên vẹn\r\n\r\nbody\r\n").encode()  # fmt: skip
    with client(srv) as c:
        c.login(BINH, PASSWORD)
        assert submit(c, BINH, [HEAD], complete)[0] == S250
    assert inbox(srv, HEAD)[-1].endswith(complete)  # nothing to do: byte for byte


def test_remote_recipients_go_to_the_outbound_queue_local_ones_are_delivered(srv):
    before = len(inbox(srv, BINH))
    with client(srv) as c:
        c.login(HEAD, PASSWORD)
        code, reply = submit(c, HEAD, [BINH, "ban@other.gov.vn"], letter(HEAD))
    assert code == S250 and len(inbox(srv, BINH)) == before + 1
    deadline = time.monotonic() + 10
    while f"id={tx_id(reply)} queued as" not in srv.log():
        assert time.monotonic() < deadline, srv.log()[-3000:]
        time.sleep(0.1)
