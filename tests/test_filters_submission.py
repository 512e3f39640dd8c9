"""Content filters beyond inbound delivery (R-SEC-1): submission scanned by clamd (a virus is
always refused) and, when asked, by spamd (refused at the reject score); forged ``X-Spam-*``
fields of inbound mail removed before ours are added. Real private spamd and clamd
(tests/filter_daemons.py), smtplib as the user's client and as the sending MTA."""

from __future__ import annotations

import smtplib

import pytest

from smtp.filters.headers import split_fields, without
from tests.conftest import BACKENDS, Server
from tests.filter_daemons import EICAR, GTUBE, start_clamd, start_spamd

PASSWORD = "Mat-khau-2026!"
ANNV = "annv@example.gov.vn"
BINH = "binhtt@example.gov.vn"


def test_without_removes_fields_by_prefix_in_any_case_with_their_continuations():
    head = b"X-Spam-Flag: NO\r\nSubject: a\r\nx-spam-status: No,\r\n\tscore=0\r\nX-Spammy: 1\r\n\r\n"
    assert b"".join(without(split_fields(head), "X-Spam-")) == b"Subject: a\r\nX-Spammy: 1\r\n"
    assert without(split_fields(b"Subject: x-spam-test\r\n\r\n"), "X-Spam-") is None


@pytest.fixture(scope="module")
def daemons():
    started = []
    try:
        for start in (start_spamd, start_clamd):
            started.append(start())
        yield {"spamd": started[0].port, "clamd": started[1].port}
    finally:
        for d in started:
            d.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def srv(request, tmp_path_factory, daemons):
    server = Server(tmp_path_factory.mktemp(f"subfilters-{request.param}"), request.param, {
        "filters": {"spamd": {"port": daemons["spamd"], "junk_score": 5, "reject_score": 15, "submission": True},
                    "clamd": {"port": daemons["clamd"]}},
    })  # fmt: skip
    try:
        server.start()
        for address in (ANNV, BINH):
            server.add_account(address, PASSWORD)
        yield server
    finally:
        server.destroy()


def inbox(server, address: str) -> list[bytes]:
    store = server.open_store()
    try:
        f = store.folders.get_folder(store.accounts.get_account(address).id, "INBOX")
        view = store.messages.open_view(f.id, claim_recent=False)
        return [store.messages.read_blob(m.blob) for m in store.messages.fetch(f.id, view.uids)]
    finally:
        store.close()


def submit(server, body: bytes, subject: str) -> tuple[int, bytes]:
    raw = f"From: <{ANNV}>\r\nTo: <{BINH}>\r\nSubject: {subject}\r\n\r\n".encode() + body + b"\r\n"
    with smtplib.SMTP(server.host, server.port("submission"), local_hostname="client.test", timeout=60) as c:
        c.starttls()
        c.ehlo("client.test")
        c.login(ANNV, PASSWORD)
        c.mail(ANNV)
        assert c.rcpt(BINH)[0] == 250
        return c.data(raw)


def test_submission_virus_and_spam_are_refused_clean_mail_delivered(srv):
    before = len(inbox(srv, BINH))
    code, text = submit(srv, EICAR, "virus")
    assert code == 554 and text.startswith(b"5.7.1")
    code, text = submit(srv, GTUBE, "gtube")
    assert code == 550 and text.startswith(b"5.7.1")
    code, _ = submit(srv, "Kính gửi anh Bình, báo cáo tuần.".encode(), "Báo cáo")
    assert code == 250
    stored = inbox(srv, BINH)
    assert len(stored) == before + 1
    assert b"X-Spam-" not in stored[-1]  # submission is not marked, only refused above the score


def test_forged_spam_fields_from_outside_are_removed_before_ours(srv):
    forged = (f"X-Spam-Flag: NO\r\nX-Spam-Status: No, score=-100.0 required=5.0\r\n\ttests=TRUSTED\r\n"
              f"From: van@other.vn\r\nTo: {BINH}\r\nSubject: Forged\r\nX-Spam-Score: -100\r\n\r\nXin chào.\r\n").encode()
    with smtplib.SMTP(srv.host, srv.port("smtp"), local_hostname="mx.other.vn", timeout=60) as s:
        s.ehlo()
        s.mail("van@other.vn")
        assert s.rcpt(BINH)[0] == 250
        assert s.data(forged)[0] == 250
    stored = inbox(srv, BINH)[-1]
    head = stored[: stored.index(b"\r\n\r\n")]
    assert b"score=-100" not in head and b"X-Spam-Score: -100" not in head and b"TRUSTED" not in head
    assert head.count(b"X-Spam-Flag: ") == 1 and b"X-Spam-Status: No, score=" in head  # ours
    assert head.endswith(b"\r\nSubject: Forged") and stored.endswith(b"\r\n\r\nXin ch\xc3\xa0o.\r\n")
