"""An acknowledged message survives ``kill -9`` at any moment; nothing half-stored ever shows.

The rule (docs/architecture.md, "The writer and group commit"): 250 to DATA only after the
durable commit. Several clients deliver concurrently while the server is killed; after a restart
every message that got 250 is present byte for byte, and every message present is one that was
sent, whole.
"""

from __future__ import annotations

import hashlib
import smtplib
import threading
import time

PASSWORD = "Mật-khẩu-2026"


def _message(n: int) -> bytes:
    body = (f"Thư số {n} — kiểm tra độ bền.\r\n" * 200).encode()
    return (
        f"From: sender{n}@other.gov.vn\r\nTo: annv@example.gov.vn\r\nSubject: =?utf-8?q?Th=C6=B0_{n}?=\r\n"
        f"Message-ID: <crash-{n}@other.gov.vn>\r\n\r\n"
    ).encode() + body


def _sender(server, start: int, acked: list, stop: threading.Event) -> None:
    n = start
    while not stop.is_set():
        try:
            with smtplib.SMTP(server.host, server.port("smtp"), timeout=10) as client:
                while not stop.is_set():
                    client.sendmail(f"sender{n}@other.gov.vn", ["annv@example.gov.vn"], _message(n))
                    acked.append(n)
                    n += 1000
        except (smtplib.SMTPException, OSError):
            return  # the server was killed under us: unacknowledged, may or may not be stored


def test_kill_9_during_concurrent_delivery_loses_no_acknowledged_message(make_server):
    server = make_server()
    server.add_account("annv@example.gov.vn", PASSWORD)
    acked: list[int] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_sender, args=(server, i, acked, stop)) for i in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=15)
    assert len(acked) >= 150, "the server accepted too little mail before the kill"
    acked_now = set(acked)

    server.start()
    store = server.open_store()
    try:
        account = store.accounts.get_account("annv@example.gov.vn")
        inbox = store.folders.get_folder(account.id, "INBOX")
        view = store.messages.open_view(inbox.id, claim_recent=False)
        sent = {hashlib.sha256(_message(n)).hexdigest(): n for n in range(0, 8 + 1000 * (len(acked) + 20))
                if n % 1000 < 8}
        found: set[int] = set()
        for info in store.messages.fetch(inbox.id, view.uids):
            raw = store.messages.read_blob(info.blob)
            assert len(raw) == info.size
            body = raw.split(b"\r\n\r\n", 1)
            # Our trace headers come first; the client's message follows byte for byte.
            start = raw.index(b"From: sender")
            n = sent.get(hashlib.sha256(raw[start:]).hexdigest())
            assert n is not None, f"stored message is not one that was sent whole: {body[0][:200]!r}"
            found.add(n)
        missing = acked_now - found
        assert not missing, f"{len(missing)} acknowledged messages lost after kill -9"
        assert account.used_messages == len(view.uids) or store.accounts.get_account_by_id(account.id).used_messages == len(view.uids)
    finally:
        store.close()
