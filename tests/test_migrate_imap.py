"""``mailserver migrate imap`` against a real private Dovecot filled by the test (R-LIFE-1: an
agency moves in with its mail): folders (Vietnamese names in modified UTF-7, special-use folders
onto ours), flags, keywords, INTERNALDATE, byte-exact bodies; a run killed with ``kill -9`` and
resumed, an incremental run, a master login, oversized messages reported. Compared message by
message over IMAP on both sides."""

from __future__ import annotations

import datetime as _dt
import hashlib
import signal
import subprocess
import sys
import uuid

import pytest
from imapclient import IMAPClient

from tests.conftest import free_port, wait_until
from tests.imapdiff.dovecot import DOVECOT, Dovecot

PASSWORD = "Mk-migrate-2026!"
MASTER, MASTER_PASSWORD = "migration-admin", "Master-pass-2026!"
ZONE = _dt.timezone(_dt.timedelta(hours=7))
#: source folder → ours (Dovecot announces \Sent etc. on these names, like ours)
FOLDERS = {"INBOX": "INBOX", "Sent": "Sent", "Trash": "Trash", "Hộp thư/Dự án 2025": "Hộp thư/Dự án 2025",
           "Công văn đến": "Công văn đến"}


class MasterDovecot(Dovecot):
    """The tests' private Dovecot plus a master user (an admin login for every account)."""

    def config(self, users: str) -> str:
        master = self.dir / "masters"
        master.write_text(f"{MASTER}:{{PLAIN}}{MASTER_PASSWORD}\n")
        text = super().config(users)
        return text.replace("passdb {", f"passdb {{\n  driver = passwd-file\n  master = yes\n  args = scheme=PLAIN {master}\n}}\npassdb {{", 1)


@pytest.fixture(scope="module")
def dovecot():
    if DOVECOT is None:
        pytest.skip("dovecot (Debian package dovecot-imapd) not installed")
    d = MasterDovecot(free_port())
    try:
        d.start()
        yield d
    finally:
        d.destroy()


def _message(n: int, subject: str, *, size: int = 0, message_id: bool = True) -> bytes:
    head = (f"From: Nguyễn Văn An <annv@old.gov.vn>\r\nTo: b@old.gov.vn\r\nSubject: {subject}\r\n"
            f"Date: Mon, 1 Dec 2025 08:{n % 60:02d}:00 +0700\r\n")
    if message_id:
        head += f"Message-ID: <m{n}.{uuid.uuid4().hex}@old.gov.vn>\r\n"
    body = f"Nội dung thư số {n}.\r\n" + ("x" * 70 + "\r\n") * (size // 72)
    return (head + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n" + body).encode()


def _source_account(server, dovecot, name: str) -> str:
    address = f"mig-{name}-{uuid.uuid4().hex[:6]}@{server.domain}"
    server.add_account(address, PASSWORD)
    dovecot.add_user(address, PASSWORD)
    return address


def _fill(dovecot, address: str, folders: dict[str, list[tuple[bytes, tuple, _dt.datetime]]]) -> None:
    with IMAPClient(dovecot.host, dovecot.port, ssl=False) as c:
        c.login(address, PASSWORD)
        for folder, messages in folders.items():
            if not c.folder_exists(folder):
                c.create_folder(folder)
                c.subscribe_folder(folder)
            for body, flags, when in messages:
                c.append(folder, body, flags=flags, msg_time=when)


def _contents(host: str, port: int, address: str, *, login=None) -> dict[str, list[tuple]]:
    """Folder → sorted (body sha256, flags, INTERNALDATE in UTC) of every message."""
    out = {}
    with IMAPClient(host, port, ssl=False) as c:
        c.normalise_times = False
        c.login(address, PASSWORD)
        for _flags, _delim, name in c.list_folders():
            if b"\\Noselect" in _flags:
                continue
            c.select_folder(name, readonly=True)
            rows = []
            uids = c.search(["ALL"])
            for _uid, data in (c.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"]) if uids else {}).items():
                flags = tuple(sorted(f.decode() for f in data[b"FLAGS"] if f.lower() != b"\\recent"))
                rows.append((hashlib.sha256(data[b"BODY[]"]).hexdigest(), flags, data[b"INTERNALDATE"].astimezone(_dt.UTC)))
            out[name] = sorted(rows)
    return out


def _mapped(source: dict[str, list]) -> dict[str, list]:
    return {FOLDERS.get(name, name): rows for name, rows in source.items()}


def _csv(tmp_path, rows: list[str]):
    path = tmp_path / f"accounts-{uuid.uuid4().hex[:6]}.csv"
    path.write_text("address,source_user,source_password\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _migrate(server, dovecot, csv_path, *extra: str, check=True):
    return server.cli("migrate", "imap", "--from", f"{dovecot.host}:{dovecot.port}", "--accounts", str(csv_path),
                      *extra, check=check)


def test_every_folder_message_flag_and_date_arrive_then_only_new_mail(server, dovecot, tmp_path):
    address = _source_account(server, dovecot, "full")
    when = _dt.datetime(2024, 3, 5, 9, 30, 15, tzinfo=ZONE)
    same = _message(99, "Hai bản giống nhau")
    _fill(dovecot, address, {
        "INBOX": [(_message(1, "Chào"), (), when), (_message(2, "Đã đọc"), ("\\Seen", "\\Flagged"), when),
                  (_message(3, "Từ khóa"), ("$Forwarded", "QuanTrong", "\\Answered"), when + _dt.timedelta(days=1)),
                  (_message(4, "Không có Message-ID", message_id=False), ("\\Seen",), when),
                  (same, (), when), (same, (), when)],
        "Sent": [(_message(5, "Đã gửi"), ("\\Seen",), when)],
        "Trash": [(_message(6, "Đã xóa"), ("\\Seen", "\\Deleted"), when)],
        "Hộp thư/Dự án 2025": [(_message(7, "Dự án"), ("\\Draft",), _dt.datetime(2019, 12, 31, 23, 59, 59, tzinfo=_dt.UTC))],
        "Công văn đến": [(_message(8, "Công văn"), (), when)],
    })
    csv_path = _csv(tmp_path, [f"{address},{address},{PASSWORD}"])
    first = _migrate(server, dovecot, csv_path)
    source = _contents(dovecot.host, dovecot.port, address)
    ours = _contents(server.host, server.port("imap"), address)
    for name, rows in _mapped(source).items():
        assert ours[name] == rows, name
    assert sum(len(r) for r in ours.values()) == 10
    assert _row(first.stdout, address)[:5] == [address, "7", "10", "0", "10"]

    again = _migrate(server, dovecot, csv_path)
    assert _contents(server.host, server.port("imap"), address) == ours, "a second run duplicated something"
    assert _row(again.stdout, address)[:5] == [address, "7", "10", "10", "0"]

    _fill(dovecot, address, {"INBOX": [(_message(10, "Thư mới"), (), when)], "Công văn đến": [(_message(11, "Mới"), ("\\Seen",), when)]})
    third = _migrate(server, dovecot, csv_path)
    assert _row(third.stdout, address)[:5] == [address, "7", "12", "10", "2"]
    source = _contents(dovecot.host, dovecot.port, address)
    ours = _contents(server.host, server.port("imap"), address)
    for name, rows in _mapped(source).items():
        assert ours[name] == rows, name
    assert sum(len(r) for r in ours.values()) == 12


def test_vietnamese_folder_names_travel_as_modified_utf7_and_arrive_nfc(server, dovecot):
    address = _source_account(server, dovecot, "utf7")
    _fill(dovecot, address, {"Hộp thư/Dự án 2025": []})
    with IMAPClient(dovecot.host, dovecot.port, ssl=False) as c:
        c.login(address, PASSWORD)
        raw = c._imap.list('""', "*")[1]  # the source's wire form: modified UTF-7, not UTF-8
    assert any(b"&" in line and b"H&" in line for line in raw), raw


def test_a_run_killed_with_kill_9_resumes_without_a_duplicate(server, dovecot, tmp_path):
    address = _source_account(server, dovecot, "kill")
    when = _dt.datetime(2025, 6, 1, 8, 0, tzinfo=ZONE)
    total = 120
    _fill(dovecot, address, {"INBOX": [(_message(i, f"Thư {i}"), ("\\Seen",) if i % 2 else (), when) for i in range(total)]})
    csv_path = _csv(tmp_path, [f"{address},{address},{PASSWORD}"])
    command = [sys.executable, "-m", "mailserver", "--config", str(server.config_path), "migrate", "imap",
               "--from", f"{dovecot.host}:{dovecot.port}", "--accounts", str(csv_path), "--max-rate", "20"]
    proc = subprocess.Popen(command, env=server.env, cwd=server.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _count(server, address) >= 10, timeout=60, what="the first messages copied")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    interrupted = _count(server, address)
    assert 10 <= interrupted < total, "the run ended before it could be interrupted"
    result = _migrate(server, dovecot, csv_path)
    assert _row(result.stdout, address)[3:5] == [str(interrupted), str(total - interrupted)]
    source = _contents(dovecot.host, dovecot.port, address)
    ours = _contents(server.host, server.port("imap"), address)
    assert ours["INBOX"] == source["INBOX"]
    assert len(ours["INBOX"]) == total


def _row(stdout: str, address: str) -> list[str]:
    """The summary table's cells for one account."""
    return [line.split() for line in stdout.splitlines() if line.split()[:1] == [address]][-1]


def _count(server, address: str) -> int:
    with IMAPClient(server.host, server.port("imap"), ssl=False) as c:
        c.login(address, PASSWORD)
        return c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"]


def test_master_login_several_accounts_at_once_and_oversized_messages_reported(server, dovecot, tmp_path):
    when = _dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=ZONE)
    one, two = _source_account(server, dovecot, "m1"), _source_account(server, dovecot, "m2")
    _fill(dovecot, one, {"INBOX": [(_message(1, "Nhỏ"), (), when), (_message(2, "Lớn", size=300_000), (), when)]})
    _fill(dovecot, two, {"INBOX": [(_message(3, "Nhỏ"), ("\\Seen",), when)]})
    secret = tmp_path / "master"
    secret.write_text(MASTER_PASSWORD)
    csv_path = _csv(tmp_path, [f"{one},{one},", f"{two},{two},"])
    result = server.cli("--set", "limits.max_message_size=200000", "migrate", "imap", "--from",
                        f"{dovecot.host}:{dovecot.port}", "--accounts", str(csv_path), "--master-user", MASTER,
                        "--master-password-file", str(secret), "--parallel", "2", "--report", str(tmp_path / "report.csv"))
    assert "too big" in result.stdout
    assert "too big" in (tmp_path / "report.csv").read_text()
    assert len(_contents(server.host, server.port("imap"), one)["INBOX"]) == 1
    assert _contents(server.host, server.port("imap"), two)["INBOX"] == _contents(dovecot.host, dovecot.port, two)["INBOX"]


def test_a_refused_login_and_an_unknown_account_fail_that_account_only(server, dovecot, tmp_path):
    good = _source_account(server, dovecot, "good")
    _fill(dovecot, good, {"INBOX": [(_message(1, "Một"), (), _dt.datetime(2025, 1, 1, tzinfo=ZONE))]})
    csv_path = _csv(tmp_path, [f"{good},{good},wrong-password", f"nobody-{uuid.uuid4().hex[:6]}@{server.domain},x,y",
                               f"{good.replace('mig-', 'mig2-')},{good},{PASSWORD}"])
    server.add_account(good.replace("mig-", "mig2-"), PASSWORD)
    result = _migrate(server, dovecot, csv_path, check=False)
    assert result.returncode == 1
    assert "refused the login" in result.stdout and "no account" in result.stdout
    assert "2 of 3 account(s) not fully migrated" in result.stderr
    assert len(_contents(server.host, server.port("imap"), good.replace("mig-", "mig2-"))["INBOX"]) == 1


def test_a_bad_accounts_file_names_file_and_line(server, dovecot, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("address,source_user,source_password\nan@example.gov.vn,an,pw\nnot-an-address,x,y\n")
    result = _migrate(server, dovecot, path, check=False)
    assert result.returncode == 1
    assert f"{path}:3: address" in result.stderr and "Traceback" not in result.stderr


def test_implicit_tls_source_checks_the_certificate(server, tmp_path):
    """--tls against a real IMAPS server (ours, with its self-signed certificate): refused while
    the certificate cannot be verified (account reported, exit 1), copied once --no-verify is given."""
    source, target = f"tls-src-{uuid.uuid4().hex[:6]}@{server.domain}", f"tls-dst-{uuid.uuid4().hex[:6]}@{server.domain}"
    server.add_account(source, PASSWORD)
    server.add_account(target, PASSWORD)
    with IMAPClient(server.host, server.port("imap"), ssl=False) as c:
        c.login(source, PASSWORD)
        c.append("INBOX", _message(1, "Qua TLS"), flags=("\\Seen",), msg_time=_dt.datetime(2025, 5, 5, tzinfo=ZONE))
    csv_path = _csv(tmp_path, [f"{target},{source},{PASSWORD}"])
    args = ("migrate", "imap", "--from", f"{server.host}:{server.port('imaps')}", "--tls", "--accounts", str(csv_path))
    refused = server.cli(*args, check=False)
    assert refused.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in refused.stdout
    server.cli(*args, "--no-verify")
    assert _contents(server.host, server.port("imap"), target)["INBOX"] == _contents(server.host, server.port("imap"), source)["INBOX"]
