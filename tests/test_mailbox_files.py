"""``mailserver mailbox export|import``: Maildir and mbox out of one account and back into another,
byte for byte with flags, keywords and INTERNALDATE (Maildir) — checked over IMAP on our server,
and the exported Maildir read by a real Dovecot; mbox files from Python's mailbox module (mboxo)
imported; an import run twice adds nothing."""

from __future__ import annotations

import datetime as _dt
import hashlib
import mailbox as stdlib_mailbox
import uuid

import pytest
from imapclient import IMAPClient

from tests.conftest import free_port
from tests.imapdiff.dovecot import DOVECOT, Dovecot

PASSWORD = "Mk-files-2026!"
ZONE = _dt.timezone(_dt.timedelta(hours=7))
WHEN = _dt.datetime(2024, 7, 8, 9, 10, 11, tzinfo=ZONE)


def _msg(n: int, body: str = "", *, lf: bool = False, message_id: bool = True) -> bytes:
    text = (f"From: Trần Thị Bình <binhtt@example.gov.vn>\r\nSubject: Thư {n}\r\n"
            + (f"Message-ID: <f{n}.{uuid.uuid4().hex}@example.gov.vn>\r\n" if message_id else "")
            + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + f"Nội dung {n}\r\n" + body)
    data = text.encode()
    return data.replace(b"\r\n", b"\n") if lf else data


MESSAGES = {
    "INBOX": [(_msg(1), ("\\Seen",)), (_msg(2, "From the start of a line\r\n>From quoted\r\n>>From twice\r\n"), ("\\Flagged", "$Forwarded")),
              (_msg(3, message_id=False), ("\\Answered", "QuanTrong")), (_msg(4, "bare\nLF\r\nmixed\r\n"), ())],
    "Sent": [(_msg(5), ("\\Seen",))],
    "Hộp thư/Dự án 2025": [(_msg(6, "v1.2\r\n"), ("\\Draft", "$Label1"))],
    "Công văn.2025": [(_msg(7), ("\\Deleted", "\\Seen"))],
}


def _account(server, name: str) -> str:
    address = f"files-{name}-{uuid.uuid4().hex[:6]}@{server.domain}"
    server.add_account(address, PASSWORD)
    return address


def _fill(server, address: str, *, dots: bool = True) -> None:
    with IMAPClient(server.host, server.port("imap"), ssl=False) as c:
        c.login(address, PASSWORD)
        for folder, messages in MESSAGES.items():
            if "." in folder and not dots:
                continue
            if not c.folder_exists(folder):
                c.create_folder(folder)
            for i, (data, flags) in enumerate(messages):
                c.append(folder, data, flags=flags, msg_time=WHEN + _dt.timedelta(minutes=i))


def _contents(host, port, address, *, flags=True) -> dict[str, list]:
    out = {}
    with IMAPClient(host, port, ssl=False) as c:
        c.normalise_times = False
        c.login(address, PASSWORD)
        for attrs, _d, name in c.list_folders():
            if b"\\Noselect" in attrs:
                continue
            c.select_folder(name, readonly=True)
            uids = c.search(["ALL"])
            rows = []
            for _uid, d in (c.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"]) if uids else {}).items():
                f = tuple(sorted(x.decode() for x in d[b"FLAGS"] if x.lower() != b"\\recent")) if flags else ()
                rows.append((hashlib.sha256(d[b"BODY[]"]).hexdigest(), f, d[b"INTERNALDATE"].astimezone(_dt.UTC)))
            if rows:
                out[name] = sorted(rows)
    return out


def test_maildir_export_and_import_round_trip_byte_for_byte(server, tmp_path):
    source, target = _account(server, "src"), _account(server, "dst")
    _fill(server, source)
    out = tmp_path / "maildir"
    result = server.cli("mailbox", "export", source, str(out), "--format", "maildir")
    assert "7 message(s)" in result.stdout
    assert (out / "cur").is_dir() and (out / ".H&Htk-p th&AbA-.D&HvE- &AOE-n 2025" / "cur").is_dir()
    assert (out / ".C&APQ-ng v&AQM-n&AC4-2025" / "cur").is_dir()
    server.cli("mailbox", "import", target, str(out))
    want = _contents(server.host, server.port("imap"), source)
    assert _contents(server.host, server.port("imap"), target) == want
    assert sum(len(v) for v in want.values()) == 7
    again = server.cli("mailbox", "import", target, str(out))
    assert "0 added, 7 already there" in again.stdout
    assert _contents(server.host, server.port("imap"), target) == want


def test_mbox_export_and_import_round_trip_bodies_and_dates(server, tmp_path):
    source, target = _account(server, "msrc"), _account(server, "mdst")
    _fill(server, source)
    out = tmp_path / "mbox"
    server.cli("mailbox", "export", source, str(out), "--format", "mbox")
    inbox = (out / "INBOX.mbox").read_bytes()
    assert b"\n>From the start" in inbox and b"\n>>From quoted" in inbox and b"\n>>>From twice" in inbox
    reader = stdlib_mailbox.mbox(str(out / "INBOX.mbox"), create=False)
    try:
        assert len(reader) == 4  # a standard reader sees 4 messages
    finally:
        reader.close()
    assert (out / "Hộp thư" / "Dự án 2025.mbox").is_file()
    server.cli("mailbox", "import", target, str(out))
    want = _contents(server.host, server.port("imap"), source, flags=False)
    assert _contents(server.host, server.port("imap"), target, flags=False) == want


def test_export_of_one_folder_and_an_mboxo_file_from_another_program(server, tmp_path):
    source, target = _account(server, "one"), _account(server, "mboxo")
    _fill(server, source)
    out = tmp_path / "sent"
    result = server.cli("mailbox", "export", source, str(out), "--format", "mbox", "--folder", "Sent")
    assert "1 message(s) in 1 folder(s)" in result.stdout and sorted(p.name for p in out.iterdir()) == ["Sent.mbox"]
    path = tmp_path / "other.mbox"
    box = stdlib_mailbox.mbox(str(path))
    box.add(b"From: a@b.vn\nSubject: one\nStatus: RO\nX-Status: F\n\nFrom here on\nbody\n")
    box.add(b"From: a@b.vn\nSubject: two\n\ntext\n")
    box.close()
    result = server.cli("mailbox", "import", target, str(path), "--folder", "Lưu trữ/Cũ", "--mboxo")
    assert "2 added" in result.stdout
    got = {}
    with IMAPClient(server.host, server.port("imap"), ssl=False) as c:
        c.login(target, PASSWORD)
        c.select_folder("Lưu trữ/Cũ", readonly=True)
        for _uid, d in c.fetch(c.search(["ALL"]), ["BODY.PEEK[]", "FLAGS"]).items():
            got[d[b"BODY[]"].split(b"Subject: ")[1][:3]] = (d[b"BODY[]"], set(d[b"FLAGS"]))
    assert got[b"one"][0] == b"From: a@b.vn\r\nSubject: one\r\nStatus: RO\r\nX-Status: F\r\n\r\nFrom here on\r\nbody\r\n"
    assert got[b"one"][1] - {b"\\Recent"} == {b"\\Seen", b"\\Flagged"}


def test_bad_input_is_a_clear_error(server, tmp_path):
    target = _account(server, "bad")
    path = tmp_path / "not.mbox"
    path.write_text("Subject: no From line\n\nbody\n")
    result = server.cli("mailbox", "import", target, str(path), check=False)
    assert result.returncode == 1 and f"{path}:1: not an mbox file" in result.stderr
    result = server.cli("mailbox", "export", target, str(tmp_path / "x"), "--folder", "Không có", check=False)
    assert result.returncode == 1 and "has no folder" in result.stderr


class _MaildirDovecot(Dovecot):
    def config(self, users: str) -> str:
        return super().config(users).replace("mail_location = sdbox:~/mail", "mail_location = maildir:~/Maildir")


def test_the_exported_maildir_is_read_by_dovecot(server, tmp_path):
    if DOVECOT is None:
        pytest.skip("dovecot (Debian package dovecot-imapd) not installed")
    import os
    import shutil

    source = _account(server, "dove")
    _fill(server, source, dots=False)  # Dovecot's Maildir++ takes no "." in a name (ours writes &AC4-)
    dovecot = _MaildirDovecot(free_port())
    try:
        home = dovecot.mail_dir / source
        home.mkdir()
        server.cli("mailbox", "export", source, str(home / "Maildir"))
        for dirpath, _dirs, files in os.walk(home):
            shutil.chown(dirpath, dovecot.uid, dovecot.gid)
            for f in files:
                shutil.chown(os.path.join(dirpath, f), dovecot.uid, dovecot.gid)
        dovecot.add_user(source, PASSWORD)
        dovecot.start()
        assert _contents(dovecot.host, dovecot.port, source) == _contents(server.host, server.port("imap"), source)
    finally:
        dovecot.destroy()
