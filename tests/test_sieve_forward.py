"""Forwarding and aliases of personal accounts (``mailserver filter``), over real SMTP and IMAP:
an alias delivers to the account; forwarding keeps a local copy or not; a message that already
passed the account (``Delivered-To``) is kept, not forwarded again (loop detection)."""

from __future__ import annotations

import imaplib
import smtplib
import uuid

import pytest

from tests.conftest import wait_until

PASSWORD = "Mk-forward-2026!"


@pytest.fixture
def people(server):
    tag = uuid.uuid4().hex[:6]
    names = {who: f"{who}-{tag}@{server.domain}" for who in ("an", "binh", "cuong")}
    for address in names.values():
        server.add_account(address, PASSWORD)
    return names


def send(server, rcpt: str, subject: str, extra: str = "") -> None:
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=30) as smtp:
        smtp.sendmail("khach@other.gov.vn", [rcpt], f"From: khach@other.gov.vn\r\nTo: {rcpt}\r\n{extra}Subject: {subject}\r\n\r\nx\r\n".encode())


def inbox(server, address: str) -> list[bytes]:
    """Header sections of the INBOX."""
    with imaplib.IMAP4(server.host, server.port("imap"), timeout=30) as imap:
        imap.login(address, PASSWORD)
        if not int(imap.select("INBOX", readonly=True)[1][0]):
            return []
        return [p[1] for p in imap.fetch("1:*", "(BODY.PEEK[HEADER])")[1] if isinstance(p, tuple)]


def test_alias_delivers_to_the_account(server, people):
    alias = f"tiep-nhan-{uuid.uuid4().hex[:6]}@{server.domain}"
    out = server.cli("filter", "alias", people["an"], alias)
    assert alias in out.stdout
    send(server, alias, "qua alias")
    wait_until(lambda: any(b"qua alias" in h for h in inbox(server, people["an"])), what="delivered through the alias")


def test_forward_without_a_local_copy(server, people):
    server.cli("filter", "forward", people["an"], people["binh"], "--no-keep")
    send(server, people["an"], "chuyen di")
    wait_until(lambda: any(b"chuyen di" in h for h in inbox(server, people["binh"])), what="forwarded")
    forwarded = next(h for h in inbox(server, people["binh"]) if b"chuyen di" in h)
    assert f"Delivered-To: {people['an']}".encode() in forwarded
    assert not any(b"chuyen di" in h for h in inbox(server, people["an"]))
    assert "without a local copy" in server.cli("filter", "list", people["an"]).stdout


def test_forward_keeping_a_local_copy_and_turning_it_off(server, people):
    server.cli("filter", "forward", people["an"], people["cuong"], "--keep")
    send(server, people["an"], "ca hai")
    wait_until(lambda: any(b"ca hai" in h for h in inbox(server, people["cuong"])), what="forwarded")
    wait_until(lambda: any(b"ca hai" in h for h in inbox(server, people["an"])), what="kept")
    server.cli("filter", "forward", people["an"], "--off")
    send(server, people["an"], "chi minh toi")
    wait_until(lambda: any(b"chi minh toi" in h for h in inbox(server, people["an"])), what="kept")
    assert not any(b"chi minh toi" in h for h in inbox(server, people["cuong"]))


def test_forwarding_loop_is_kept_not_forwarded_again(server, people):
    server.cli("filter", "forward", people["binh"], people["cuong"], "--no-keep")
    send(server, people["binh"], "vong lap", extra=f"Delivered-To: {people['binh']}\r\n")
    wait_until(lambda: any(b"vong lap" in h for h in inbox(server, people["binh"])), what="kept at the loop")
    assert not any(b"vong lap" in h for h in inbox(server, people["cuong"]))


def test_forward_to_a_remote_address_is_queued(server, people):
    server.cli("filter", "forward", people["cuong"], "nhan@other.gov.vn", "--no-keep")
    send(server, people["cuong"], "ra ngoai")
    # the queue takes it (and, with no DNS in tests, bounces it at once: its log says both)
    wait_until(lambda: "to=<nhan@other.gov.vn>" in server.log(), what="handed to the outbound queue")
    assert f"{people['cuong']} redirected to nhan@other.gov.vn" in server.log()


def test_cli_refuses_bad_scripts_with_the_line_and_bad_targets(server, people, tmp_path):
    bad = tmp_path / "bad.sieve"
    bad.write_text('require "fileinto";\nfileinto;\n', encoding="utf-8")
    r = server.cli("filter", "put", people["an"], "x", str(bad), check=False)
    assert r.returncode == 1 and "line 2" in r.stderr and "Traceback" not in r.stderr
    assert server.cli("filter", "forward", people["an"], "not an address", check=False).returncode == 2
    assert server.cli("filter", "forward", people["an"], people["an"], check=False).returncode == 1
    good = tmp_path / "good.sieve"
    good.write_text('require "fileinto";\nif header :contains "subject" "x" { fileinto "Junk"; }\n', encoding="utf-8")
    server.cli("filter", "put", people["an"], "loc", str(good), "--activate")
    assert "loc\t" in server.cli("filter", "list", people["an"]).stdout and "active" in server.cli("filter", "list", people["an"]).stdout
    assert server.cli("filter", "show", people["an"], "loc").stdout == good.read_text(encoding="utf-8")
