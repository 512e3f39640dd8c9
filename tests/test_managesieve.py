"""ManageSieve (RFC 5804) on listeners.managesieve, with the real clients sieve-connect (Perl,
what shell users and scripts use) and sievelib's Client (Python), and raw sockets for errors."""

from __future__ import annotations

import imaplib
import os
import shutil
import smtplib
import socket
import subprocess

import pytest

from tests.conftest import BACKENDS, Server, free_port, wait_until

PASSWORD = "Mk-sieve-2026!"
VACATION = 'require ["vacation","fileinto"];\r\n# nghỉ phép\r\nvacation :days 1 :subject "Nghỉ phép" "Tôi nghỉ đến thứ Hai.";\r\n'


@pytest.fixture(scope="module", params=BACKENDS)
def srv(request, tmp_path_factory):
    port = free_port()
    s = Server(tmp_path_factory.mktemp(f"managesieve-{request.param}"), request.param,
               {"listeners": {"managesieve": {"address": "127.0.0.1", "port": port}}, "sieve": {"max_scripts": 3}})
    s.ports["managesieve"] = port
    s.start()
    s.add_account(f"an@{s.domain}", PASSWORD)
    s.add_account(f"binh@{s.domain}", PASSWORD)
    yield s
    s.destroy()


def sieve_connect(srv, *args: str, user: str = "an", password: str = PASSWORD, stdin: str | None = None):
    if shutil.which("sieve-connect") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("sieve-connect is not installed")
        pytest.skip("sieve-connect is not installed")
    r, w = os.pipe()
    os.write(w, password.encode() + b"\n")
    os.close(w)
    try:
        return subprocess.run(
            ["sieve-connect", "--server", srv.host, "--port", str(srv.port("managesieve")), "--user", f"{user}@{srv.domain}",
             "--passwordfd", str(r), "--notlsverify", "--authmech", "PLAIN", *args],
            capture_output=True, text=True, timeout=60, pass_fds=(r,), input=stdin,
        )  # fmt: skip
    finally:
        os.close(r)


class Raw:
    """A line-level client for what real clients never send."""

    def __init__(self, srv) -> None:
        self.sock = socket.create_connection((srv.host, srv.port("managesieve")), timeout=30)
        self.file = self.sock.makefile("rb")
        self.greeting = self.until_status()

    def until_status(self) -> list[bytes]:
        lines = []
        while True:
            line = self.file.readline()
            assert line, "connection closed"
            lines.append(line.rstrip(b"\r\n"))
            if line[:2] in (b"OK", b"NO") or line.startswith(b"BYE"):
                return lines

    def cmd(self, data: bytes) -> list[bytes]:
        self.sock.sendall(data)
        return self.until_status()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_sieve_connect_uploads_activates_lists_downloads_and_deletes(srv, tmp_path):
    script = tmp_path / "nghi-phep.sieve"
    script.write_text(VACATION, encoding="utf-8")
    up = sieve_connect(srv, "--upload", "--localsieve", str(script), "--remotesieve", "nghỉ phép")
    assert up.returncode == 0, up.stderr
    assert sieve_connect(srv, "--activate", "--remotesieve", "nghỉ phép").returncode == 0
    listed = sieve_connect(srv, "--list")
    assert listed.returncode == 0, listed.stderr
    assert [line for line in listed.stdout.splitlines() if "nghỉ phép" in line] == ['"nghỉ phép" ACTIVE']
    back = tmp_path / "back.sieve"
    down = sieve_connect(srv, "--download", "--remotesieve", "nghỉ phép", "--localsieve", str(back))
    assert down.returncode == 0, down.stderr
    assert back.read_text(encoding="utf-8") == VACATION.replace("\r\n", "\n")  # sieve-connect saves local line ends
    refused = sieve_connect(srv, "--delete", "--remotesieve", "nghỉ phép")
    assert refused.returncode != 0  # the active script cannot be deleted (RFC 5804 2.10)
    assert sieve_connect(srv, "--deactivate").returncode == 0
    assert sieve_connect(srv, "--delete", "--remotesieve", "nghỉ phép").returncode == 0
    assert "nghỉ phép" not in sieve_connect(srv, "--list").stdout


def test_sieve_connect_wrong_password_fails(srv):
    assert sieve_connect(srv, "--list", password="sai-mat-khau").returncode != 0


def test_sievelib_client_over_starttls_all_commands(srv, monkeypatch):
    from sievelib.managesieve import Client

    monkeypatch.setenv("SSL_CERT_FILE", str(srv.settings.tls.cert))  # trust the self-signed certificate
    c = Client(srv.host, srv.port("managesieve"))
    assert c.connect(f"binh@{srv.domain}", PASSWORD, starttls=True, authmech="PLAIN")
    assert "vacation" in c.get_sieve_capabilities() and "fileinto" in c.get_sieve_capabilities()
    assert c.havespace("loc", 100)
    assert not c.checkscript('require "fileinto";\nfoo "x";')  # errors name the line
    assert b"line 2" in c.errmsg
    assert c.checkscript('require "fileinto"; fileinto "Junk";')
    assert c.putscript("loc", 'require "fileinto";\r\nif header :contains "subject" "rác" { fileinto "Junk"; }\r\n')
    assert c.setactive("loc")
    assert c.renamescript("loc", "loc thư")
    assert c.listscripts() == ("loc thư", [])
    assert "rác" in c.getscript("loc thư")
    assert not c.renamescript("khong-co", "x")
    assert c.putscript("hai", "keep;") and c.putscript("ba", "keep;")
    assert not c.putscript("bon", "keep;") and b"MAXSCRIPTS" in c.errcode  # sieve.max_scripts: 3
    assert not c.havespace("x", 10**7)
    assert c.setactive("")
    assert c.deletescript("loc thư") and c.deletescript("hai") and c.deletescript("ba")
    c.logout()


def test_active_script_from_managesieve_runs_at_delivery(srv, monkeypatch):
    from sievelib.managesieve import Client

    monkeypatch.setenv("SSL_CERT_FILE", str(srv.settings.tls.cert))
    c = Client(srv.host, srv.port("managesieve"))
    assert c.connect(f"binh@{srv.domain}", PASSWORD, starttls=True, authmech="PLAIN")
    assert c.putscript("rac", 'if header :contains "subject" "rác" { discard; }') and c.setactive("rac")
    c.logout()
    with smtplib.SMTP(srv.host, srv.port("smtp"), timeout=30) as smtp:
        for subject in ("thư rác", "thư thật"):
            smtp.sendmail(f"an@{srv.domain}", [f"binh@{srv.domain}"],
                          f"Subject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nx\r\n".encode())
    def subjects() -> list[bytes]:
        with imaplib.IMAP4(srv.host, srv.port("imap"), timeout=30) as imap:
            imap.login(f"binh@{srv.domain}", PASSWORD)
            count = int(imap.select("INBOX", readonly=True)[1][0])
            if not count:
                return []
            return [p[1].strip() for p in imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1] if isinstance(p, tuple)]

    wait_until(lambda: subjects(), what="delivered")
    assert subjects() == ["Subject: thư thật".encode()]


def test_commands_before_login_and_bad_input_get_no_not_a_traceback(srv):
    raw = Raw(srv)
    try:
        assert any(line.startswith(b'"STARTTLS"') for line in raw.greeting)
        assert raw.cmd(b'LISTSCRIPTS\r\n')[-1].startswith(b"NO")
        assert raw.cmd(b'FROBNICATE\r\n')[-1].startswith(b"NO")
        assert raw.cmd(b'AUTHENTICATE "PLAIN" "!!notbase64"\r\n')[-1].startswith(b"NO")
        assert raw.cmd(b'CAPABILITY\r\n')[-1] == b"OK"
        assert raw.cmd(b'PUTSCRIPT "x" {99999999+}\r\n')[-1].startswith(b"BYE")  # over the size limit: closed
    finally:
        raw.close()


def test_plaintext_login_refused_without_tls_when_not_allowed(make_server):
    port = free_port()
    s = make_server({"listeners": {"managesieve": {"address": "127.0.0.1", "port": port}},
                     "tls": {"allow_plaintext_auth_on_loopback": False}})  # fmt: skip
    s.ports["managesieve"] = port
    raw = Raw(s)
    try:
        assert b'"SASL" ""' in raw.greeting
        reply = raw.cmd(b'AUTHENTICATE "PLAIN" "AGFuAHg="\r\n')[-1]
        assert reply.startswith(b"NO (ENCRYPT-NEEDED)")
    finally:
        raw.close()


def test_a_locked_account_session_ends_at_its_next_command(srv):
    import base64

    address = f"khoa@{srv.domain}"
    srv.add_account(address, PASSWORD)
    raw = Raw(srv)
    try:
        token = base64.b64encode(f"\0{address}\0{PASSWORD}".encode()).decode()
        assert raw.cmd(f'AUTHENTICATE "PLAIN" "{token}"\r\n'.encode())[-1].startswith(b"OK")
        assert raw.cmd(b"LISTSCRIPTS\r\n")[-1] == b"OK"
        srv.cli("account", "lock", address)
        assert raw.cmd(b"LISTSCRIPTS\r\n")[-1].startswith(b"BYE (UNAVAILABLE)")
    finally:
        raw.close()


def test_authenticate_with_a_continuation_and_a_literal_putscript(srv):
    import base64

    raw = Raw(srv)
    try:
        raw.sock.sendall(b'AUTHENTICATE "PLAIN"\r\n')
        assert raw.file.readline() == b'""\r\n'  # the server asks for the response
        token = base64.b64encode(f"\0an@{srv.domain}\0{PASSWORD}".encode())
        assert raw.cmd(b'"' + token + b'"\r\n')[-1].startswith(b"OK")
        script = 'require "fileinto";\r\nfileinto "Thư cũ";\r\n'.encode()
        assert raw.cmd(b'PUTSCRIPT "cu" {%d+}\r\n' % len(script) + script + b"\r\n")[-1] == b"OK"
        got = raw.cmd(b'GETSCRIPT "cu"\r\n')
        assert got[0] == b"{%d}" % len(script) and got[-1] == b"OK"
        assert raw.cmd(b'DELETESCRIPT "cu"\r\n')[-1] == b"OK"
        assert raw.cmd(b'LOGOUT\r\n')[-1].startswith(b"OK")
    finally:
        raw.close()


@pytest.mark.skipif(not os.environ.get("MAILSERVER_TEST_DATABASE_URL"), reason="several processes need PostgreSQL")
def test_managesieve_is_served_by_every_worker_of_serve_workers(tmp_path):
    port = free_port()
    s = Server(tmp_path, "postgresql", {"listeners": {"managesieve": {"address": "127.0.0.1", "port": port}}})
    s.ports["managesieve"] = port
    try:
        s.start(workers=2)  # the parent binds the port; each worker adopts it
        for _ in range(4):
            raw = Raw(s)
            try:
                assert raw.greeting[-1].startswith(b"OK") and raw.cmd(b"CAPABILITY\r\n")[-1] == b"OK"
            finally:
                raw.close()
    finally:
        s.destroy()
