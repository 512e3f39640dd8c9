"""Users' Sieve scripts run at delivery (RFC 5228/5230/5429): over real SMTP into the real server,
read back over IMAP. Scripts are stored through the storage API (ManageSieve: test_managesieve.py)."""

from __future__ import annotations

import imaplib
import smtplib
import uuid

import pytest

from tests.conftest import wait_until

PASSWORD = "Mk-sieve-2026!"


@pytest.fixture(scope="module")
def users(server):
    names = {}
    for who in ("loc", "khach", "chanh", "vang"):
        address = f"{who}-{uuid.uuid4().hex[:6]}@{server.domain}"
        server.add_account(address, PASSWORD)
        names[who] = address
    return names


def put_script(server, address: str, text: str, name: str = "main") -> None:
    store = server.open_store()
    try:
        account = store.accounts.get_account(address)
        store.sieve.put_script(account.id, name, text)
        store.sieve.set_active(account.id, name)
    finally:
        store.close()


def send(server, sender: str, rcpt: str, subject: str, extra: str = "", body: str = "Nội dung thư.") -> None:
    msg = (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\nMessage-ID: <{uuid.uuid4().hex}@t>\r\n{extra}"
           f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=30) as smtp:
        smtp.sendmail(sender, [rcpt], msg)


def folder(server, address: str, name: str = "INBOX") -> list[tuple[str, bytes]]:
    """(flags, header section) of every message in the folder."""
    with imaplib.IMAP4(server.host, server.port("imap"), timeout=30) as imap:
        imap.login(address, PASSWORD)
        typ, _ = imap.select(f'"{name}"', readonly=True)
        if typ != "OK":
            return []
        _, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER])") if int(imap.select(f'"{name}"', readonly=True)[1][0]) else ("OK", [])
        return [(part[0].decode(), part[1]) for part in data if isinstance(part, tuple)]


def subjects(server, address: str, name: str = "INBOX") -> list[str]:
    out = []
    for _flags, head in folder(server, address, name):
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("subject:"):
                out.append(line[8:].strip())
    return out


def create_folder(server, address: str, name: str) -> None:
    with imaplib.IMAP4(server.host, server.port("imap"), timeout=30) as imap:
        imap.login(address, PASSWORD)
        assert imap.create(name)[0] == "OK"


def test_fileinto_with_flags_lands_in_the_folder(server, users):
    create_folder(server, users["loc"], "Archive")
    put_script(server, users["loc"], 'require ["fileinto","imap4flags"];\n'
               'if header :contains "subject" "[BC]" { addflag "\\\\Flagged"; fileinto "Archive"; }')
    send(server, users["khach"], users["loc"], "[BC] bao cao")
    send(server, users["khach"], users["loc"], "thu thuong")
    wait_until(lambda: subjects(server, users["loc"], "Archive") == ["[BC] bao cao"], what="filed into Archive")
    assert "\\Flagged" in folder(server, users["loc"], "Archive")[0][0]
    assert subjects(server, users["loc"]) == ["thu thuong"]


def test_fileinto_a_missing_folder_keeps_in_inbox(server, users):
    address = f"lac-{uuid.uuid4().hex[:6]}@{server.domain}"
    server.add_account(address, PASSWORD)
    put_script(server, address, 'require "fileinto"; fileinto "Khong Co";')
    send(server, users["khach"], address, "lac")
    wait_until(lambda: subjects(server, address) == ["lac"], what="kept in INBOX")


def test_discard_is_accepted_and_stores_nothing(server, users):
    put_script(server, users["chanh"], 'if header :is "subject" "rac" { discard; }')
    send(server, users["khach"], users["chanh"], "rac")  # no SMTP error
    send(server, users["khach"], users["chanh"], "that")
    wait_until(lambda: subjects(server, users["chanh"]) == ["that"], what="only the kept message")


def test_vacation_once_per_sender_and_never_to_lists(server, users):
    put_script(server, users["vang"], 'require "vacation";\nvacation :days 3 :subject "Nghỉ phép" "Tôi nghỉ đến 15/12.";')
    send(server, users["khach"], users["vang"], "hop 1")
    wait_until(lambda: "Nghỉ phép" in str(subjects(server, users["khach"])) or "=?utf-8?" in str(subjects(server, users["khach"])),
               what="vacation reply")
    replies = [h for _f, h in folder(server, users["khach"]) if b"Auto-Submitted: auto-replied" in h]
    assert len(replies) == 1 and b"In-Reply-To:" in replies[0]
    send(server, users["khach"], users["vang"], "hop 2")
    send(server, users["khach"], users["vang"], "list", extra="List-Id: <ds.lists.example.gov.vn>\r\n")
    wait_until(lambda: len(subjects(server, users["vang"])) == 3, what="three messages kept")
    replies = [h for _f, h in folder(server, users["khach"]) if b"Auto-Submitted: auto-replied" in h]
    assert len(replies) == 1  # once per sender per :days, never to a list


def test_reject_by_the_only_recipient_is_refused_at_data(server, users):
    put_script(server, users["chanh"], 'require "reject";\nif header :contains "subject" "quang cao" { reject "Không nhận quảng cáo."; }')
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(server, users["khach"], users["chanh"], "quang cao 1")
    assert refused.value.smtp_code == 550 and b"5.7.1" in refused.value.smtp_error
    assert "quang cao 1" not in subjects(server, users["chanh"])


def test_reject_by_one_of_two_recipients_tells_the_sender(server, users):
    msg = (f"From: {users['khach']}\r\nTo: {users['chanh']}, {users['vang']}\r\nSubject: quang cao 2\r\n\r\nx\r\n").encode()
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=30) as smtp:
        smtp.sendmail(users["khach"], [users["chanh"], users["vang"]], msg)
    wait_until(lambda: any(b"MAILER-DAEMON" in h and b"Auto-Submitted" in h for _f, h in folder(server, users["khach"])),
               what="rejection notice")
    assert "quang cao 2" not in subjects(server, users["chanh"])
    wait_until(lambda: "quang cao 2" in subjects(server, users["vang"]), what="the other recipient has it")


def test_redirect_to_a_local_account_with_and_without_copy(server, users):
    put_script(server, users["loc"], 'require "copy";\nif header :is "subject" "chuyen" { redirect :copy "%s"; }\n'
               'if header :is "subject" "chi chuyen" { redirect "%s"; }' % (users["chanh"], users["chanh"]))
    send(server, users["khach"], users["loc"], "chuyen")
    send(server, users["khach"], users["loc"], "chi chuyen")
    wait_until(lambda: {"chuyen", "chi chuyen"} <= set(subjects(server, users["chanh"])), what="both redirected")
    mine = subjects(server, users["loc"])
    assert "chuyen" in mine and "chi chuyen" not in mine
    assert all(b"Delivered-To: " + users["loc"].encode() in h for _f, h in folder(server, users["chanh"])
               if b"chuyen" in h)


def test_failing_script_delivers_to_inbox_and_tells_the_user(server, users):
    put_script(server, users["khach"], "".join(f'redirect "a{i}@other.gov.vn";\n' for i in range(6)))
    send(server, users["loc"], users["khach"], "van den")
    wait_until(lambda: "van den" in subjects(server, users["khach"]), what="kept in INBOX")
    wait_until(lambda: any(b"Auto-Submitted: auto-generated" in h for _f, h in folder(server, users["khach"])),
               what="failure notice to the user")
