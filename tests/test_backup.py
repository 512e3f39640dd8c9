"""Backups (R-SEC-4): ``mailserver db backup`` while mail is being delivered, ``db verify`` and
``db restore`` into an empty data directory. Every message acknowledged before the backup began
comes back byte for byte with its UID, flags and the folder's UIDVALIDITY (clients do not
download again); a damaged backup is refused naming the file; the schedule rotates. SQLite
(online backup API) and PostgreSQL (pg_dump/pg_restore)."""

from __future__ import annotations

import datetime as _dt
import imaplib
import re
import shutil
import smtplib
import threading

import yaml

from mailserver.maintenance.rotation import to_delete
from tests.conftest import _pg_drop, wait_until

PASSWORD = "Mat-khau-2026!"
ADDRESS = "annv@example.gov.vn"
BIG = 300 * 1024  # over database.inline_blob_limit: this body is a file under blobs/ (SQLite)
REFUSED = 1


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


def _mailbox(server) -> tuple[int, dict[int, tuple[int, frozenset, bytes]]]:
    """UIDVALIDITY and, by message number n of its Subject: (UID, flags, message from "From: s")."""
    c = imaplib.IMAP4(server.host, server.port("imap"))
    c.login(ADDRESS, PASSWORD)
    c.select("INBOX", readonly=True)
    uidvalidity = int(c.response("UIDVALIDITY")[1][0])
    _typ, data = c.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
    out = {}
    for item in data:
        if isinstance(item, tuple):
            head, raw = item
            uid = int(re.search(rb"UID (\d+)", head).group(1))
            # \Recent belongs to a session, not to the message (RFC 3501 2.3.2): which session saw it
            # first depends on when the backup was taken, so it is not compared
            flags = frozenset(re.search(rb"FLAGS \(([^)]*)\)", head).group(1).split()) - {b"\\Recent"}
            n = int(raw.split(b"Subject: backup ", 1)[1].split(b"\r\n", 1)[0])
            out[n] = (uid, flags, raw[raw.index(b"From: s"):])
    c.logout()
    return uidvalidity, out


def _flag_some(server) -> None:
    c = imaplib.IMAP4(server.host, server.port("imap"))
    c.login(ADDRESS, PASSWORD)
    c.select("INBOX")
    c.store("1:10", "+FLAGS", r"(\Seen \Flagged)")
    c.store("3", "+FLAGS", "($Label1)")  # a keyword too
    c.logout()


def test_restore_of_a_backup_taken_while_delivering_keeps_messages_uids_and_flags(make_server, tmp_path):
    server = make_server()
    server.add_account(ADDRESS, PASSWORD)
    acked: list[int] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_send, args=(server, acked, stop, i)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(acked) >= 40, timeout=60, what="40 messages acknowledged")
        _flag_some(server)
        uidvalidity, before = _mailbox(server)  # acknowledged (and flagged) before the backup began
        result = server.cli("db", "backup", str(tmp_path / "backup"))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert "verified" in result.stdout
    assert (tmp_path / "backup" / "MANIFEST.sha256").exists() and (tmp_path / "backup" / "tls").is_dir()
    assert "OK" in server.cli("db", "verify", str(tmp_path / "backup")).stdout
    server.stop()

    config = tmp_path / "restore.yaml"  # the configuration the operator restores with, outside the data directory
    settings = yaml.safe_load(server.config_path.read_text(encoding="utf-8"))
    shutil.rmtree(server.data_dir)  # the disk is lost
    if server.backend == "postgresql":
        _pg_drop(server.pg_name)  # and the database with it
    else:
        assert any(p.is_file() for p in (tmp_path / "backup" / "blobs").rglob("*")), "the large bodies' files were copied"
    config.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    result = server.cli("--config", str(config), "db", "restore", str(tmp_path / "backup"))
    assert "restored" in result.stdout
    server.start()
    restored_validity, restored = _mailbox(server)
    assert restored_validity == uidvalidity
    for n, (uid, flags, raw) in before.items():
        assert restored[n] == (uid, flags, raw) and raw == _message(n), n
    assert set(restored) <= set(acked)


def test_damaged_backup_is_refused_naming_the_file(make_server, tmp_path):
    server = make_server()
    server.add_account(ADDRESS, PASSWORD)
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=30) as c:
        c.sendmail("s0@other.gov.vn", [ADDRESS], _message(0))  # a body file on SQLite
    server.cli("db", "backup", str(tmp_path / "backup"))
    server.stop()
    backup = tmp_path / "backup"
    if server.backend == "sqlite":  # the body's file
        victim = max((p for p in backup.joinpath("blobs").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    else:
        victim = backup / "database.pgdump"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    rel = victim.relative_to(backup).as_posix()
    result = server.cli("db", "verify", str(backup), check=False)
    assert result.returncode == REFUSED and rel in result.stderr and "checksum" in result.stderr
    empty = tmp_path / "new-data"
    settings = yaml.safe_load(server.config_path.read_text(encoding="utf-8"))
    settings["data_dir"] = str(empty)
    if server.backend == "sqlite":
        settings["database"]["url"] = f"sqlite:///{empty / 'mail.db'}"
    config = tmp_path / "other.yaml"
    config.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    result = server.cli("--config", str(config), "db", "restore", str(backup), check=False)
    assert result.returncode == REFUSED and "damaged backup" in result.stderr and rel in result.stderr
    assert not empty.exists() or not any(empty.iterdir())  # nothing written
    victim.unlink()
    result = server.cli("db", "verify", str(backup), check=False)
    assert result.returncode == REFUSED and f"{rel}: missing" in result.stderr


def test_restore_refuses_a_data_directory_that_is_not_empty(make_server, tmp_path):
    server = make_server(start=False)
    server.cli("db", "backup", str(tmp_path / "backup"))
    result = server.cli("db", "restore", str(tmp_path / "backup"), check=False)
    assert result.returncode == REFUSED and "not empty" in result.stderr


def test_backup_refuses_a_non_empty_target_or_one_inside_the_data_directory(make_server, tmp_path):
    server = make_server(start=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    result = server.cli("db", "backup", str(tmp_path / "full"), check=False)
    assert result.returncode == REFUSED and "not empty" in result.stderr
    result = server.cli("db", "backup", str(server.data_dir / "b"), check=False)
    assert result.returncode == REFUSED and "inside the data directory" in result.stderr


def test_scheduled_backups_rotate_keeping_days_and_weeks(make_server, tmp_path):
    from mailserver.maintenance.scheduled import run_scheduled_backup

    server = make_server(start=False)
    settings = server.settings.model_copy(update={"backup": server.settings.backup.model_copy(
        update={"dir": tmp_path / "nightly", "keep_daily": 2, "keep_weekly": 2})})
    days = [_dt.datetime(2026, 11, 30, 2, 0) + _dt.timedelta(days=i) for i in range(9)]  # Mon 30 Nov .. Tue 8 Dec
    for day in days:
        run_scheduled_backup(settings, now=day)
    kept = sorted(p.name for p in (tmp_path / "nightly").iterdir())
    # the last two days, and the newest of each of the last two ISO weeks (Sun 6 Dec for week 49)
    assert kept == ["2026-12-06T0200", "2026-12-07T0200", "2026-12-08T0200"]
    assert "OK" in server.cli("db", "verify", str(tmp_path / "nightly" / kept[-1])).stdout


def test_rotation_rule():
    names = ["2026-12-01T0200", "2026-12-02T0200", "2026-12-02T1400", "2026-12-09T0200", "notes"]
    assert to_delete(names, keep_daily=1, keep_weekly=0) == ["2026-12-01T0200", "2026-12-02T0200", "2026-12-02T1400"]
    assert to_delete(names, keep_daily=1, keep_weekly=2) == ["2026-12-01T0200", "2026-12-02T0200"]
    assert to_delete(names, keep_daily=3, keep_weekly=0) == ["2026-12-02T0200"]  # newest of each day
    assert to_delete([], keep_daily=1, keep_weekly=1) == []


def test_progress_bar_on_a_terminal_only(make_server, tmp_path):
    """A bar on a terminal (here a pseudo-terminal), none in a pipe (scripts, logs)."""
    import os
    import pty
    import subprocess
    import sys

    server = make_server(start=False)
    server.cli("db", "backup", str(tmp_path / "backup"))
    piped = server.cli("db", "verify", str(tmp_path / "backup"))
    assert "━" not in piped.stdout + piped.stderr
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "mailserver", "--config", str(server.config_path), "db", "verify",
                                 str(tmp_path / "backup")], stdin=secondary, stdout=secondary, stderr=secondary,
                                env={**server.env, "COLUMNS": "100", "TERM": "xterm"})
        os.close(secondary)
        out = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(primary)
    text = out.decode("utf-8", "replace")
    assert "verify" in text and "━" in text and "OK" in text
