"""``mailserver db backup`` (mailserver/maintenance/backup.py) while mail is being delivered: the copy is a
complete data directory; put in place of the original, it serves every message acknowledged
before the backup began, byte for byte, bodies kept as files included. Refusals name the reason.
SQLite only (PostgreSQL is backed up with pg_dump: the command says so)."""

from __future__ import annotations

import imaplib
import shutil
import smtplib
import threading

import pytest

from tests.conftest import wait_until

PASSWORD = "Mat-khau-2026!"
ADDRESS = "annv@example.gov.vn"
BIG = 300 * 1024  # over database.inline_blob_limit: this body is a file under blobs/


def _message(n: int) -> bytes:
    body = (b"x" * 70 + b"\r\n") * (BIG // 72 if n % 10 == 0 else 20)
    return f"From: s{n}@other.gov.vn\r\nTo: {ADDRESS}\r\nSubject: backup {n}\r\n\r\n".encode() + body


def _send(server, acked: list, stop: threading.Event, start: int) -> None:
    n = start
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=30) as c:
        while not stop.is_set():
            c.sendmail(f"s{n}@other.gov.vn", [ADDRESS], _message(n))
            acked.append(n)
            n += 4


def _subjects(server) -> dict[bytes, bytes]:
    c = imaplib.IMAP4(server.host, server.port("imap"))
    c.login(ADDRESS, PASSWORD)
    c.select("INBOX", readonly=True)
    _typ, data = c.fetch("1:*", "(BODY.PEEK[])")
    out = {}
    for item in data:
        if isinstance(item, tuple):
            raw = item[1]
            out[raw.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0]] = raw[raw.index(b"From: s"):]
    c.logout()
    return out


def test_backup_while_delivering_restores_every_acknowledged_message(make_server, tmp_path):
    server = make_server()
    if server.backend != "sqlite":
        result = server.cli("db", "backup", str(tmp_path / "b"), check=False)
        assert result.returncode == 1 and "pg_dump" in result.stderr
        return
    server.add_account(ADDRESS, PASSWORD)
    acked: list[int] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_send, args=(server, acked, stop, i)) for i in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acked) >= 40, timeout=60, what="40 messages acknowledged")
    before = set(acked)  # acknowledged before the backup began
    result = server.cli("db", "backup", str(tmp_path / "backup"))
    assert "backup in" in result.stdout
    stop.set()
    for t in threads:
        t.join(timeout=30)
    server.stop()
    assert list((tmp_path / "backup" / "blobs").rglob("*")), "the large bodies' files were copied"
    assert (tmp_path / "backup" / "mailserver.yaml").exists() and (tmp_path / "backup" / "tls").is_dir()
    shutil.rmtree(server.data_dir)
    shutil.copytree(tmp_path / "backup", server.data_dir)
    server.start()
    restored = _subjects(server)
    for n in before:
        assert restored[f"backup {n}".encode()] == _message(n), n
    assert set(int(s.split()[1]) for s in restored) <= set(acked)


def test_backup_refuses_a_non_empty_target_or_one_inside_the_data_directory(make_server, tmp_path):
    server = make_server(start=False)
    server.cli("db", "upgrade")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    result = server.cli("db", "backup", str(tmp_path / "full"), check=False)
    if server.backend == "sqlite":
        assert result.returncode == 1 and "not empty" in result.stderr
        result = server.cli("db", "backup", str(server.data_dir / "b"), check=False)
        assert result.returncode == 1 and "inside the data directory" in result.stderr
    else:
        assert result.returncode == 1 and "pg_dump" in result.stderr
