"""Content filters of the MX end to end (R-SEC-1, R-SEC-2): a real server process, real private
spamd, clamd and opendkim daemons (tests/filter_daemons.py), smtplib as the sending MTA, and the
stored messages read back from the store. DNS answers (SPF, DMARC) are the server's static ones."""

from __future__ import annotations

import smtplib

import pytest

from tests.conftest import BACKENDS, Server
from tests.filter_daemons import (
    EICAR, GTUBE, JUNK_PHRASE, Hanging, start_clamav_milter, start_clamd, start_opendkim, start_spamd,
)  # fmt: skip

pytestmark = pytest.mark.requirement("R-SEC-1")

PASSWORD = "Mật-khẩu-2026"
ANNV = "annv@example.gov.vn"
OPS = "vanhanh@example.gov.vn"


def folder(server, address: str, name: str) -> list[bytes]:
    """Stored bytes of every message in one folder of the account, in UID order."""
    store = server.open_store()
    try:
        account = store.accounts.get_account(address)
        f = store.folders.get_folder(account.id, name)
        view = store.messages.open_view(f.id, claim_recent=False)
        return [store.messages.read_blob(m.blob) for m in store.messages.fetch(f.id, view.uids)]
    finally:
        store.close()


def message(body: str | bytes, sender: str = "van@other.vn", subject: str = "Thu") -> bytes:
    body = body.encode() if isinstance(body, str) else body
    return (f"From: {sender}\r\nTo: {ANNV}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@other.vn>\r\n\r\n").encode() + body + b"\r\n"


def send(server, msg: bytes, sender: str = "van@other.vn", rcpt: str = ANNV) -> tuple[int, bytes]:
    """The reply to end of DATA (or to the refused RCPT)."""
    with smtplib.SMTP(server.host, server.port("smtp"), local_hostname="mx.other.vn", timeout=60) as s:
        s.ehlo()
        s.mail(sender)
        code, text = s.rcpt(rcpt)
        if code != 250:
            return code, text
        return s.data(msg)


@pytest.fixture(scope="module")
def daemons():
    started = []
    try:
        for start in (start_spamd, start_clamd):
            started.append(start())
        yield {"spamd": started[0].port, "clamd": started[1].port, "clamd_socket": started[1].socket}
    finally:
        for d in started:
            d.stop()


DNS = {
    "other.vn": {"txt": ["v=spf1 ip4:127.0.0.1 -all"]},
    "_dmarc.other.vn": {"txt": ["v=DMARC1; p=reject"]},
    "forged.vn": {"txt": ["v=spf1 ip4:192.0.2.1 -all"]},
    "_dmarc.forged.vn": {"txt": ["v=DMARC1; p=reject; rua=mailto:d@forged.vn"]},
    "doubtful.vn": {"txt": ["v=spf1 ip4:192.0.2.1 -all"]},
    "_dmarc.doubtful.vn": {"txt": ["v=DMARC1; p=quarantine"]},
}


@pytest.fixture(scope="module", params=BACKENDS)
def mx(request, tmp_path_factory, daemons):
    """One server with spamd, clamd, DMARC and role addresses; each test has its own recipient."""
    server = Server(tmp_path_factory.mktemp(f"filters-{request.param}"), request.param, {
        "filters": {"spamd": {"port": daemons["spamd"], "junk_score": 5, "reject_score": 15},
                    "clamd": {"socket": daemons["clamd_socket"]}},  # a Unix socket; the others use TCP
        "role_addresses": {"postmaster": OPS, "abuse": OPS},
        "dns": {"static_only": True, "static": DNS},
    })  # fmt: skip
    try:
        server.start()
        server.add_account(OPS, PASSWORD, name="Tổ vận hành")
        yield server
    finally:
        server.destroy()


def test_spam_is_marked_filed_into_junk_or_refused_by_score_and_viruses_are_refused(mx):
    user = "spam@example.gov.vn"
    mx.add_account(user, PASSWORD)
    code, _ = send(mx, message("Xin chào anh An."), rcpt=user)
    assert code == 250
    (clean,) = folder(mx, user, "INBOX")
    assert b"X-Spam-Flag: NO" in clean and b"X-Spam-Status: No, score=0.0 required=5.0" in clean

    code, _ = send(mx, message(f"Buy {JUNK_PHRASE} now", subject="junk"), rcpt=user)
    assert code == 250
    (junk,) = folder(mx, user, "Junk")
    assert b"X-Spam-Flag: YES" in junk and b"tests=LOCAL_TEST_JUNK" in junk

    code, text = send(mx, message(GTUBE, subject="gtube"), rcpt=user)
    assert code == 550 and text.startswith(b"5.7.1")

    code, text = send(mx, message(EICAR, subject="virus"), rcpt=user)
    assert code == 554 and text.startswith(b"5.7.1")
    attached = (b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
                b"Xem tep.\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + __import__("base64").encodebytes(EICAR).replace(b"\n", b"\r\n") + b"--b--")  # fmt: skip
    code, _ = send(mx, message(attached, subject="attached").replace(b"\r\n\r\n", b"\r\n", 1), rcpt=user)
    assert code == 554
    assert len(folder(mx, user, "INBOX")) == 1 and len(folder(mx, user, "Junk")) == 1  # nothing refused was stored


def test_dmarc_reject_is_refused_quarantine_goes_to_junk_and_aligned_mail_passes(mx):
    user = "dmarc@example.gov.vn"
    mx.add_account(user, PASSWORD)
    code, _ = send(mx, message("Hợp lệ.", sender="van@other.vn", subject="aligned"), rcpt=user)
    assert code == 250
    (ok,) = folder(mx, user, "INBOX")
    assert b"spf=pass" in ok and b"dmarc=pass header.from=other.vn" in ok

    code, text = send(mx, message("Giả mạo.", sender="boss@forged.vn", subject="forged"), sender="boss@forged.vn", rcpt=user)
    assert code == 550 and b"DMARC" in text

    code, _ = send(mx, message("Đáng ngờ.", sender="boss@doubtful.vn", subject="doubtful"), sender="boss@doubtful.vn", rcpt=user)
    assert code == 250
    (junk,) = folder(mx, user, "Junk")
    assert b"dmarc=fail header.from=doubtful.vn" in junk


def test_postmaster_and_abuse_of_every_local_domain_reach_the_operator(mx):
    for rcpt in ("postmaster@example.gov.vn", "abuse@sub.example.gov.vn", "Postmaster@SUB.example.gov.vn", "Postmaster"):
        code, text = send(mx, message(f"Gửi {rcpt}", subject=rcpt.replace("@", "-")), rcpt=rcpt)
        assert code == 250, (rcpt, text)
    got = folder(mx, OPS, "INBOX")
    assert len(got) == 4
    assert b"for <Postmaster@SUB.example.gov.vn>" in got[2] or b"Postmaster@SUB.example.gov.vn" in got[2]


@pytest.mark.parametrize("on_failure", ["accept", "tempfail"])
def test_a_filter_that_hangs_delivers_unscanned_or_defers_never_loses(make_server, on_failure):
    hang = Hanging()
    try:
        server = make_server({"filters": {
            "spamd": {"port": hang.port, "timeout": 1, "on_failure": on_failure},
            "clamd": {"port": hang.port, "timeout": 1, "on_failure": on_failure},
            "milters": [{"name": "stuck", "port": hang.port, "timeout": 1, "on_failure": on_failure}],
        }})  # fmt: skip
        server.add_account(ANNV, PASSWORD)
        code, text = send(server, message("Xin chào."))
        if on_failure == "accept":
            assert code == 250
            (stored,) = folder(server, ANNV, "INBOX")
            for name in (b"clamd", b"milter stuck", b"spamd"):
                assert b"X-Filter-Unscanned: " + name + b" (TimeoutError)" in stored
        else:
            assert code == 451 and text.startswith(b"4.7.1")
            assert folder(server, ANNV, "INBOX") == []
    finally:
        hang.close()


def test_opendkim_milter_inserts_its_header_and_removes_a_forged_one(make_server):
    milter = start_opendkim()
    try:
        server = make_server({"filters": {"milters": [{"name": "opendkim", "port": milter.port, "timeout": 10}]}})
        server.add_account(ANNV, PASSWORD)
        forged = b"Authentication-Results: milter.example.gov.vn; dkim=pass header.d=example.gov.vn\r\n" + message("Chào.")
        code, _ = send(server, forged)
        assert code == 250
        (stored,) = folder(server, ANNV, "INBOX")
        # added by the milter (insert-header), the forged one removed (change-header to nothing)
        assert b"Authentication-Results: milter.example.gov.vn; dkim=none" in stored
        assert b"dkim=pass header.d=example.gov.vn" not in stored
        assert stored.endswith("\r\n\r\nChào.\r\n".encode())
    finally:
        milter.stop()


@pytest.mark.parametrize("on_infected", ["Quarantine", "Reject"])
def test_clamav_milter_replaces_headers_quarantines_rejects_and_defers(make_server, daemons, on_infected):
    milter = start_clamav_milter(daemons["clamd"], on_infected)
    down = Hanging()
    broken = start_clamav_milter(down.port) if on_infected == "Quarantine" else None  # its clamd never answers
    try:
        server = make_server({"filters": {"milters": [{"name": "clamav", "port": milter.port, "timeout": 20}]}})
        server.add_account(ANNV, PASSWORD)
        forged = b"X-Virus-Status: Clean\r\n" + message(EICAR, subject="virus")
        code, text = send(server, forged)
        if on_infected == "Reject":
            assert code == 550 and text.startswith(b"5.7.1")
            assert folder(server, ANNV, "INBOX") == [] and folder(server, ANNV, "Junk") == []
        else:
            assert code == 250
            (junk,) = folder(server, ANNV, "Junk")
            assert b"X-Quarantine: milter clamav" in junk
            assert b"X-Virus-Status: Infected" in junk and b"X-Virus-Status: Clean" not in junk  # replaced
        code, _ = send(server, message("Sạch."))
        assert code == 250
        (clean,) = folder(server, ANNV, "INBOX")
        assert b"X-Virus-Status: Clean" in clean and b"X-Virus-Scanned: clamav-milter" in clean

        if broken is not None:  # the milter cannot reach its clamd: it defers (tempfail), so do we
            deferring = make_server({"filters": {"milters": [{"name": "clamav", "port": broken.port, "timeout": 60}]}})
            deferring.add_account(ANNV, PASSWORD)
            code, text = send(deferring, message("Sạch."))
            assert code == 451 and text.startswith(b"4.7.1")
    finally:
        milter.stop()
        if broken is not None:
            broken.stop()
        down.close()


def test_spam_for_an_account_without_a_junk_folder_lands_in_inbox(mx):
    import imaplib

    user, password = "nojunk@example.gov.vn", "Nojunk-pass-2026"
    mx.add_account(user, password)
    with imaplib.IMAP4(mx.host, mx.port("imap")) as imap:
        imap.login(user, password)
        assert imap.delete("Junk")[0] == "OK"
    code, _ = send(mx, message(f"Buy {JUNK_PHRASE} now", subject="nojunk"), rcpt=user)
    assert code == 250
    (stored,) = folder(mx, user, "INBOX")
    assert b"X-Spam-Flag: YES" in stored
