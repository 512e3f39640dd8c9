"""R-QUOTA-1 over SMTP against the real server (tests/conftest.py ``Server``): the SIZE we
advertise, 452 4.2.2 per recipient at RCPT, the decoded attachment limit after DATA (552 5.3.4,
bilingual, naming limit and measured size), the mailbox limit at the commit under 20 racing
deliveries, broken MIME, and the DSN owed to the sender when one recipient is refused after
the others accepted the message."""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import smtplib
import time

import pytest

from quota.decide import smtp_size_limit
from tests.conftest import BACKENDS, Server

pytestmark = pytest.mark.requirement("R-QUOTA-1")

MiB = 1024**2
LIMIT = 20 * MiB  # the "none" profile's attachment limit (R-QUOTA-1)
SIZE = smtp_size_limit(LIMIT)  # 30,795,024: 20 MiB in base64 plus 2 MiB for the letter
PASSWORD = "Mat-khau-2026!"
ANNV = "annv@example.gov.vn"
BINH = "binhtt@example.gov.vn"
CHI = "chilt@example.gov.vn"  # in the quota class "small": 1 MiB of attachments
DUNG = "dungpv@example.gov.vn"  # the mailbox whose limit the tests move
S250, S452, S552 = 250, 452, 552
QUOTA_RCPT = b"4.2.2"
TOO_BIG = b"5.3.4"
MAILBOX_FULL = b"5.2.2"


@pytest.fixture(scope="module", params=BACKENDS)
def srv(request, tmp_path_factory):
    extra = {"quota": {"thresholds": [], "classes": {"small": {"attachment": "1MB"}}}}
    server = Server(tmp_path_factory.mktemp(f"quota-smtp-{request.param}"), request.param, extra)
    try:
        server.start()
        for address in (ANNV, BINH, CHI, DUNG):
            server.add_account(address, PASSWORD)
        with _store(server) as store:
            store.usage.set_class(store.accounts.get_account(CHI).id, "small")
        send(server, "x@other.gov.vn", [DUNG], b"Subject: first\r\n\r\n" + b"d" * 4000 + b"\r\n")
        yield server
    finally:
        server.destroy()


class _store:
    def __init__(self, server: Server) -> None:
        self.store = server.open_store()

    def __enter__(self):
        return self.store

    def __exit__(self, *exc) -> None:
        self.store.close()


def account(server: Server, address: str):
    with _store(server) as store:
        return store.accounts.get_account(address)


def set_limit(server: Server, address: str, limit: int | None) -> None:
    with _store(server) as store:
        store.usage.set_quota(store.accounts.get_account(address).id, limit)


def inbox(server: Server, address: str) -> list[bytes]:
    with _store(server) as store:
        folder = store.folders.get_folder(store.accounts.get_account(address).id, "INBOX")
        uids = store.messages.open_view(folder.id, claim_recent=False).uids
        return [store.messages.read_blob(m.blob) for m in store.messages.fetch(folder.id, uids)]


def with_attachments(*parts: tuple[bytes, str]) -> bytes:
    """A letter with attachments, each (decoded bytes, "base64" | "quoted-printable")."""
    out = (
        "From: Nguyễn Văn An <annv@example.gov.vn>\r\nTo: <binhtt@example.gov.vn>\r\nSubject: Báo cáo\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="=_b"\r\n\r\n'
        "--=_b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nKính gửi anh Bình, gửi kèm báo cáo.\r\n"
    ).encode()
    for i, (data, encoding) in enumerate(parts):
        if encoding == "base64":
            body = base64.encodebytes(data).replace(b"\n", b"\r\n")
        else:
            body = binascii.b2a_qp(data, istext=False).replace(b"\n", b"\r\n")
        out += (
            f'--=_b\r\nContent-Type: application/pdf; name="bc{i}.pdf"\r\n'
            f'Content-Disposition: attachment; filename="bc{i}.pdf"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n'
        ).encode() + body + b"\r\n"
    return out + b"--=_b--\r\n"


def send(server: Server, sender: str, rcpts: list[str], message: bytes) -> tuple[dict, int, bytes]:
    """(refused recipients, DATA code, DATA text) over the MX port."""
    with smtplib.SMTP(server.host, server.port("smtp"), local_hostname="mx.other.gov.vn", timeout=120) as c:
        c.ehlo()
        code, text = c.mail(sender, [f"SIZE={len(message)}"])
        assert code == S250, text
        refused = {}
        for r in rcpts:
            rc = c.rcpt(r)
            if rc[0] != S250:
                refused[r] = rc
        if len(refused) == len(rcpts):
            return refused, 0, b""
        code, text = c.data(message)
        assert c.noop()[0] == S250  # the session goes on whatever happened
        return refused, code, text


def test_ehlo_advertises_the_size_implied_by_the_attachment_limit_and_mail_over_it_is_552(srv):
    with smtplib.SMTP(srv.host, srv.port("smtp")) as c:
        c.ehlo("client.test")
        assert int(c.esmtp_features["size"]) == SIZE
        code, text = c.mail("x@other.gov.vn", [f"SIZE={SIZE + 1}"])
        assert (code, text[:5]) == (S552, TOO_BIG)
        assert c.mail("x@other.gov.vn", [f"SIZE={SIZE}"])[0] == S250


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
def test_attachment_one_byte_under_the_limit_is_delivered_one_over_is_552_with_both_sizes(srv, encoding):
    data = b"a" * (LIMIT - 1)
    before = len(inbox(srv, BINH))
    refused, code, _ = send(srv, "x@other.gov.vn", [BINH], with_attachments((data, encoding)))
    assert not refused and code == S250
    assert len(inbox(srv, BINH)) == before + 1
    refused, code, text = send(srv, "x@other.gov.vn", [BINH], with_attachments((data + b"ab", encoding)))
    assert code == S552 and text.startswith(TOO_BIG)
    vi, en = text.split(b"\n")
    assert b"Tong dung luong tap tin dinh kem" in vi  # Vietnamese first (ASCII: no SMTPUTF8)
    assert en.startswith(b"5.3.4 The attachments total 20.00 MiB (20971521 bytes), over the limit of 20 MiB (20971520 bytes)")
    assert len(inbox(srv, BINH)) == before + 1


def test_several_attachments_add_up_to_over_the_limit(srv):
    parts = [(b"x" * (8 * MiB), "base64"), (b"y" * (8 * MiB), "quoted-printable"), (b"z" * (4 * MiB + 1), "base64")]
    refused, code, text = send(srv, "x@other.gov.vn", [BINH], with_attachments(*parts))
    assert code == S552 and b"(20971521 bytes)" in text


def test_smtputf8_client_gets_the_vietnamese_text_with_its_diacritics(srv):
    message = with_attachments((b"q" * (LIMIT + 1), "base64"))
    with smtplib.SMTP(srv.host, srv.port("smtp"), timeout=120) as c:
        c.ehlo("client.test")
        assert c.mail("x@other.gov.vn", ["SMTPUTF8", "BODY=8BITMIME"])[0] == S250
        assert c.rcpt(BINH)[0] == S250
        code, text = c.data(message)
    assert code == S552 and "Tổng dung lượng tập tin đính kèm".encode() in text


def test_broken_mime_is_measured_without_crashing_the_session(srv):
    broken = [
        b"Content-Type: multipart/mixed\r\n\r\n--nobody\r\nContent-Type: application/pdf\r\n\r\nabc\r\n",
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Transfer-Encoding: base64\r\n'
        b"Content-Type: image/png\r\n\r\n!!!not base64===\r\n--x\r\nContent-Type: text/plain\r\n",
        b'Content-Type: multipart/mixed; boundary="a"\r\n\r\n' + b"--a\r\nContent-Type: multipart/mixed; boundary=\"a\"\r\n\r\n" * 60,
        b"Content-Type: text/plain\r\n" + b"X-Long: " + b"h" * 300_000 + b"\r\n\r\nbody\r\n",
    ]
    for message in broken:
        refused, code, _ = send(srv, "x@other.gov.vn", [BINH], b"Subject: broken\r\n" + message)
        assert not refused and code == S250
    # counted raw when it cannot be delimited: a multipart without boundary over the limit is refused
    huge = b"Subject: no boundary\r\nContent-Type: multipart/mixed\r\n\r\n" + (b"A" * 998 + b"\r\n") * (LIMIT // 1000 + 1)
    refused, code, text = send(srv, "x@other.gov.vn", [BINH], huge)
    assert code == S552 and text.startswith(TOO_BIG)


def test_full_mailbox_is_452_at_rcpt_and_the_other_recipients_still_get_the_message(srv):
    set_limit(srv, DUNG, account(srv, DUNG).used_bytes)  # exactly full
    try:
        before = len(inbox(srv, BINH))
        refused, code, _ = send(srv, "x@other.gov.vn", [DUNG, BINH], b"Subject: full\r\n\r\nhello\r\n")
        ((rcode, rtext),) = refused.values()
        assert rcode == S452 and rtext.startswith(QUOTA_RCPT) and b"Mailbox <dungpv@example.gov.vn> is full" in rtext
        assert b"Hop thu <dungpv@example.gov.vn> da day" in rtext
        assert code == S250 and len(inbox(srv, BINH)) == before + 1
    finally:
        set_limit(srv, DUNG, None)


def test_full_mailbox_is_452_at_rcpt_without_quota_classes_too(make_server):
    """Without ``quota.classes`` the RCPT check decides on the loop (``check_delivery_now``);
    with them (the module's server) it asks the store in a thread: the same reply either way."""
    server = make_server({"quota": {"thresholds": []}})
    for address in (DUNG, BINH):
        server.add_account(address, PASSWORD)
    send(server, "x@other.gov.vn", [DUNG], b"Subject: first\r\n\r\n" + b"d" * 4000 + b"\r\n")
    set_limit(server, DUNG, account(server, DUNG).used_bytes)
    refused, code, _ = send(server, "x@other.gov.vn", [DUNG, BINH], b"Subject: full\r\n\r\nhello\r\n")
    ((rcode, rtext),) = refused.values()
    assert rcode == S452 and rtext.startswith(QUOTA_RCPT) and b"Mailbox <dungpv@example.gov.vn> is full" in rtext
    assert code == S250 and len(inbox(server, BINH)) == 1


def test_mailbox_one_byte_below_its_limit(srv):
    used = account(srv, DUNG).used_bytes
    set_limit(srv, DUNG, used + 1)
    try:
        with smtplib.SMTP(srv.host, srv.port("smtp")) as c:
            c.ehlo("client.test")
            assert c.mail("x@other.gov.vn", ["SIZE=1"])[0] == S250
            assert c.rcpt(DUNG)[0] == S250  # one byte still fits
            c.rset()
            assert c.mail("x@other.gov.vn", ["SIZE=2"])[0] == S250
            code, text = c.rcpt(DUNG)
            assert (code, text[:5]) == (S452, QUOTA_RCPT)
            c.rset()
            assert c.mail("x@other.gov.vn")[0] == S250
            assert c.rcpt(DUNG)[0] == S250  # no SIZE: a message needs one byte, which fits
            code, text = c.data(b"Subject: too big for one byte\r\n\r\nx\r\n")
            assert (code, text[:5]) == (S552, MAILBOX_FULL)  # the commit's check (only recipient)
        assert account(srv, DUNG).used_bytes == used
    finally:
        set_limit(srv, DUNG, None)


def test_message_larger_than_the_whole_mailbox_is_552_5_2_2_at_rcpt(srv):
    set_limit(srv, DUNG, 10_000)
    try:
        with smtplib.SMTP(srv.host, srv.port("smtp")) as c:
            c.ehlo("client.test")
            assert c.mail("x@other.gov.vn", ["SIZE=10001"])[0] == S250
            code, text = c.rcpt(DUNG)
        assert (code, text[:5]) == (S552, MAILBOX_FULL) and b"is larger than mailbox" in text
    finally:
        set_limit(srv, DUNG, None)


def test_twenty_concurrent_deliveries_racing_for_the_last_megabyte_never_exceed_the_limit(srv):
    used = account(srv, DUNG).used_bytes
    limit = used + MiB
    set_limit(srv, DUNG, limit)
    message = b"Subject: race\r\n\r\n" + (b"r" * 98 + b"\r\n") * 1000  # ~100 KB: about ten fit
    before = len(inbox(srv, DUNG))
    try:
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            results = list(pool.map(lambda _: send(srv, "x@other.gov.vn", [DUNG], message), range(20)))
        accepted = [r for r in results if r[1] == S250]
        for refused, code, text in results:
            if refused:
                assert next(iter(refused.values()))[0] == S452
            elif code != S250:
                assert (code, text[:5]) == (S552, MAILBOX_FULL)
        after = account(srv, DUNG).used_bytes
        assert after <= limit
        assert 5 <= len(accepted) <= 10 and len(inbox(srv, DUNG)) == before + len(accepted)
        assert limit - after < len(message) + 1024  # it filled up: the next message would not fit
    finally:
        set_limit(srv, DUNG, None)


def test_recipient_over_its_own_attachment_limit_is_bounced_to_a_local_sender_while_others_get_it(srv):
    dsns_before = len(inbox(srv, ANNV))
    chi_before, binh_before = len(inbox(srv, CHI)), len(inbox(srv, BINH))
    refused, code, _ = send(srv, ANNV, [BINH, CHI], with_attachments((b"p" * (2 * MiB), "base64")))
    assert not refused and code == S250
    assert len(inbox(srv, BINH)) == binh_before + 1 and len(inbox(srv, CHI)) == chi_before
    (dsn,) = inbox(srv, ANNV)[dsns_before:]
    text = dsn.decode()
    assert "multipart/report; report-type=delivery-status" in text and f"Final-Recipient: rfc822; {CHI}" in text
    assert "Status: 5.3.4" in text and "over this recipient's limit of 1 MiB" in text
    assert text.index("KHÔNG gửi được") < text.index("could NOT be delivered")


def test_dsn_for_a_remote_sender_goes_to_the_outbound_queue(srv):
    refused, code, _ = send(srv, "van@other.gov.vn", [BINH, CHI], with_attachments((b"p" * (2 * MiB), "base64")))
    assert not refused and code == S250
    deadline = time.monotonic() + 10
    while "DSN to remote <van@other.gov.vn> queued as" not in srv.log():
        assert time.monotonic() < deadline, srv.log()[-3000:]
        time.sleep(0.1)
