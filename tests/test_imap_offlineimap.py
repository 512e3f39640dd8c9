"""offlineimap3 (Debian's ``offlineimap``) against the real server: a mailbox synced to a local
Maildir, changed on both sides (flags, a move to Trash, a deletion, a new local message, a flag
and a delivery on the server), synced again, and checked through a second client (imaplib).

Under ``CI=true`` a missing offlineimap fails instead of skipping (tests/conftest.py).
"""

from __future__ import annotations

import imaplib
import shutil
import smtplib
import subprocess
from pathlib import Path

import pytest

PASSWORD = "Matkhau-2024x"

OFFLINEIMAPRC = """[general]
accounts = Test
metadata = {meta}
ui = basic
maxsyncaccounts = 1

[Account Test]
localrepository = Local
remoterepository = Remote

[Repository Local]
type = Maildir
localfolders = {root}

[Repository Remote]
type = IMAP
remotehost = {host}
remoteport = {port}
remoteuser = {user}
remotepass = {password}
ssl = no
starttls = no
maxconnections = 1
folderfilter = lambda name: name in ["INBOX", "Trash"]
"""

pytestmark = pytest.mark.skipif(not shutil.which("offlineimap"), reason="offlineimap (offlineimap3) not installed")


def deliver(server, to: str, subject: str) -> None:
    msg = (
        f"From: Văn thư <vanthu@{server.domain}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{abs(hash(subject))}@offlineimap.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"Nội dung: {subject}\r\n"
    ).encode()
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=10) as s:
        s.sendmail(f"vanthu@{server.domain}", [to], msg)


def login(server, address: str) -> imaplib.IMAP4:
    m = imaplib.IMAP4(server.host, server.port("imap"), timeout=10)
    m.login(address, PASSWORD)
    return m


def subject_of(path: Path) -> str:
    head = path.read_bytes().split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n")
    line = next(ln for ln in head.split(b"\n") if ln.startswith(b"Subject: "))
    return line[len(b"Subject: "):].decode()


def maildir(folder: Path) -> dict[str, Path]:
    """Local messages of one Maildir folder by subject."""
    return {subject_of(f): f for sub in ("new", "cur") if (folder / sub).is_dir() for f in (folder / sub).iterdir()}


def maildir_flags(path: Path) -> str:
    return path.name.rsplit(":2,", 1)[1] if ":2," in path.name else ""


def server_messages(m: imaplib.IMAP4, folder: str) -> dict[str, bytes]:
    """Subject → FLAGS text of every message in ``folder`` (read-only)."""
    typ, _ = m.select(folder, readonly=True)
    assert typ == "OK"
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    if data == [None]:
        return {}
    out = {}
    for part in data:
        if isinstance(part, tuple):
            subject = part[1].decode().split("Subject: ", 1)[1].strip()
            out[subject] = part[0]
    return out


def test_offlineimap_syncs_flags_moves_deletes_and_uploads_both_ways(server, tmp_path):
    user = f"offlineimap@{server.domain}"
    server.add_account(user, PASSWORD, name="Trần Thị Bình")
    for subject in ("offlineimap một", "offlineimap hai", "offlineimap ba"):
        deliver(server, user, subject)
    root, meta = tmp_path / "mail", tmp_path / "meta"
    root.mkdir()
    rc = tmp_path / "offlineimaprc"
    rc.write_text(OFFLINEIMAPRC.format(
        meta=meta, root=root, host=server.host, port=server.port("imap"), user=user, password=PASSWORD,
    ), encoding="utf-8")

    def sync() -> None:
        done = subprocess.run(
            ["offlineimap", "-c", str(rc), "-o", "-u", "basic"],
            capture_output=True, text=True, timeout=120, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ERROR" not in done.stdout + done.stderr, done.stdout + done.stderr

    # 1. Server → Maildir: every message arrives byte for byte, unseen.
    sync()
    inbox = maildir(root / "INBOX")
    assert set(inbox) == {"offlineimap một", "offlineimap hai", "offlineimap ba"}
    assert all("S" not in maildir_flags(f) for f in inbox.values())
    assert "Nội dung: offlineimap một".encode() in inbox["offlineimap một"].read_bytes()

    # 2. Local changes: flag one, move one to Trash, delete one, write a new one.
    one = inbox["offlineimap một"]
    one.rename(root / "INBOX" / "cur" / (one.name.split(":2,")[0] + ":2,FS"))
    two = inbox["offlineimap hai"]
    two.rename(root / "Trash" / "cur" / two.name)
    inbox["offlineimap ba"].unlink()
    (root / "INBOX" / "new" / "1700000000.local1.host").write_bytes(
        "From: <annv@example.gov.vn>\r\nSubject: offlineimap viết tại máy\r\n\r\nthư soạn tại máy\r\n".encode()
    )
    sync()
    m = login(server, user)
    try:
        got = server_messages(m, "INBOX")
        assert set(got) == {"offlineimap một", "offlineimap viết tại máy"}
        assert b"\\Flagged" in got["offlineimap một"] and b"\\Seen" in got["offlineimap một"]
        assert set(server_messages(m, "Trash")) == {"offlineimap hai"}

        # 3. Server-side changes through the second client, then Maildir ← server.
        m.select("INBOX")
        typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        msn = next(p[0].split()[0] for p in data if isinstance(p, tuple) and "một".encode() in p[1])
        assert m.store(msn.decode(), "+FLAGS", "(\\Answered)")[0] == "OK"
    finally:
        m.logout()
    deliver(server, user, "offlineimap bốn")
    sync()
    inbox = maildir(root / "INBOX")
    assert set(inbox) == {"offlineimap một", "offlineimap viết tại máy", "offlineimap bốn"}
    assert set(maildir_flags(inbox["offlineimap một"])) >= {"F", "R", "S"}
    assert set(maildir(root / "Trash")) == {"offlineimap hai"}
