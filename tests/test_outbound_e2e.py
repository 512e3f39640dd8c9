"""Two mail servers on loopback: A's outbound queue relays to B (the real `mailserver serve`,
routed by the static map). Checks the trip end to end: queued → delivered into B's INBOX → DKIM
verified by dkimpy independently → an S/MIME signature made with `cryptography` still verifies
(openssl) byte for byte. The worker runs over A's store in this process; the last test drives
the whole path through A's submission port once mailserver/app.py wires the outbound service."""

from __future__ import annotations

import datetime as _dt
import re
import shutil
import smtplib
import subprocess
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from smtp.authresults import authentication_results
from smtp.dkim import generate_key
from smtp.outbound.dns import Resolver
from tests.outbound_helpers import eventually, inbox_messages, start_service

pytestmark = pytest.mark.requirement("R-PROTO-2")

SENDER = "an@example.gov.vn"
RCPT = "bob@other.gov.vn"
PASSWORD = "Mat-khau-2026!"
ROOT = Path(__file__).resolve().parent.parent
INBOUND_AR = "authentication_results" in (ROOT / "smtp" / "pipeline" / "checks" / "__init__.py").read_text()


def run_cli(config: Path, *args: str):
    from mailserver.cli import cli

    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def smime_signed(tmp_path: Path) -> tuple[bytes, Path]:
    """A multipart/signed message (detached PKCS#7, SHA-256) and the signer's certificate file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, SENDER)])
    now = _dt.datetime.now(_dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - _dt.timedelta(hours=1))
        .not_valid_after(now + _dt.timedelta(days=1)).sign(key, hashes.SHA256())
    )  # fmt: skip
    body = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCông văn số 12/UBND, ký số.\r\n".encode()
    signed = pkcs7.PKCS7SignatureBuilder().set_data(body).add_signer(cert, key, hashes.SHA256()).sign(
        serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature]
    )
    head = (
        f"From: Nguyễn Văn An <{SENDER}>\r\nTo: <{RCPT}>\r\nSubject: Công văn ký số\r\n"
        "Date: Mon, 23 Nov 2026 10:00:00 +0700\r\nMessage-ID: <smime-1@example.gov.vn>\r\n"
    ).encode()
    cert_path = tmp_path / "signer.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return head + signed, cert_path


def smime_verifies(message: bytes, cert: Path, tmp_path: Path) -> bool:
    path = tmp_path / "check.eml"
    path.write_bytes(message)
    result = subprocess.run(
        ["openssl", "smime", "-verify", "-in", str(path), "-CAfile", str(cert), "-purpose", "any", "-out", "/dev/null"],
        capture_output=True,
    )
    return result.returncode == 0


def cli_dkim_key(config: Path, domain: str, selector: str, *options: str) -> bytes:
    result = run_cli(config, "dkim", "keygen", domain, "--selector", selector, *options)
    assert result.exit_code == 0, result.output
    m = re.search(re.escape(f"{selector}._domainkey.{domain}.") + r" IN TXT \( (.*) \)", result.output)
    return "".join(re.findall(r'"([^"]*)"', m.group(1))).encode()


@pytest.fixture
def pair(make_server, tmp_path):
    """(A, B, A's RSA DKIM TXT record). B knows A's two keys and SPF through static DNS answers, so B's
    inbound checks (when wired) can verify A's mail; A routes other.gov.vn to B."""
    key_path, txt = generate_key(tmp_path / "keys", "example.gov.vn", "mail")
    ed_path, ed_txt = generate_key(tmp_path / "keys", "example.gov.vn", "ed25519", kind="ed25519")
    dns_b = {"static_only": True, "static": {
        "mail._domainkey.example.gov.vn": {"txt": [txt]},
        "ed25519._domainkey.example.gov.vn": {"txt": [ed_txt]},
        "example.gov.vn": {"txt": ["v=spf1 ip4:127.0.0.0/8 -all"]},
    }}  # fmt: skip
    b = make_server({"domains": ["other.gov.vn"], "dns": dns_b})
    b.add_account(RCPT, PASSWORD, name="Trần Thị Bình")
    a = make_server({"routes": {"other.gov.vn": f"127.0.0.1:{b.port('smtp')}"}, "dns": {"static_only": True}},
                    start=False)  # fmt: skip
    (a.data_dir / "dkim").mkdir(parents=True, exist_ok=True)
    shutil.copy(key_path, a.data_dir / "dkim" / key_path.name)
    shutil.copy(ed_path, a.data_dir / "dkim" / ed_path.name)  # A signs with RSA and Ed25519 (RFC 8463)
    a.add_account(SENDER, PASSWORD)
    a.start()
    return a, b, txt.encode()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl verifies the S/MIME signature")
async def test_signed_smime_message_relayed_to_a_second_server_verifies_dkim_and_smime(pair, tmp_path):
    a, b, txt = pair
    original, cert = smime_signed(tmp_path)
    assert smime_verifies(original, cert, tmp_path)
    store_a = a.open_store()
    service = await start_service(a.settings, store_a, resolver=Resolver.from_settings(a.settings.dns))
    try:
        blob = store_a.messages.put_blob(original)
        await service.enqueue(blob, SENDER, [RCPT])
        store_b = b.open_store()
        try:
            (stored,) = await eventually(lambda: inbox_messages(store_b, RCPT), timeout=30)
        finally:
            store_b.close()
        await eventually(lambda: not store_a.queue.list())
    finally:
        await service.stop()
        store_a.close()
    keys = {b"mail._domainkey.example.gov.vn.": txt}
    assert dkim.verify(stored, dnsfunc=lambda name, timeout=5: keys.get(name))
    assert stored.endswith(original)  # B prepended its trace headers; A added only DKIM-Signature
    assert stored.count(b"\r\nDKIM-Signature: ") == 2 and b"a=ed25519-sha256" in stored
    assert b"\r\nDKIM-Signature: " in stored and stored.index(b"DKIM-Signature") < stored.index(b"From: ")
    assert smime_verifies(stored, cert, tmp_path)
    # what B's inbound hook computes with B's configured resolver (static answers)
    header = await authentication_results(stored, "127.0.0.1", a.settings.hostname, SENDER,
                                          Resolver.from_settings(b.settings.dns), authserv_id=b.settings.hostname)  # fmt: skip
    assert b"dkim=pass header.d=example.gov.vn header.s=mail" in header and b"spf=pass smtp.mailfrom=" in header
    assert b"dkim=pass header.d=example.gov.vn header.s=ed25519" in header
    if INBOUND_AR:  # B's inbound pipeline records what it verified (R-SEC-2)
        head = stored[: stored.index(b"\r\n\r\n")]
        assert b"dkim=pass header.d=example.gov.vn header.s=mail" in head
        assert b"dkim=pass header.d=example.gov.vn header.s=ed25519" in head
        assert b"spf=pass smtp.mailfrom=an@example.gov.vn" in head
    assert not smime_verifies(stored.replace("ký số.".encode(), "ký số!".encode()), cert, tmp_path)


async def test_queue_cli_lists_retries_shows_and_deletes(pair):
    a, _b, _txt = pair
    a.stop()  # no worker of A's own may deliver (or bounce) what this test queues
    store = a.open_store()
    try:
        queue = store.queue
        first = queue.enqueue(store.messages.put_blob(b"From: <an@example.gov.vn>\r\nSubject: q\r\n\r\nx\r\n"), SENDER, ["z@nowhere.vn"])
    finally:
        store.close()
    listed = run_cli(a.config_path, "queue", "list")
    assert listed.exit_code == 0 and f"{first}\t" in listed.output and "<z@nowhere.vn>\tqueued" in listed.output
    shown = run_cli(a.config_path, "queue", "show", str(first))
    assert shown.exit_code == 0 and "Subject: q" in shown.output
    assert run_cli(a.config_path, "queue", "retry", "--all").output.strip() == "1 recipient(s) due now"
    assert run_cli(a.config_path, "queue", "delete", str(first)).exit_code == 0
    assert run_cli(a.config_path, "queue", "list").output.strip() == "queue is empty"
    missing = run_cli(a.config_path, "queue", "delete", str(first))
    assert missing.exit_code == 1
    assert run_cli(a.config_path, "dkim", "keygen", "not-ours.vn").exit_code == 1
    assert run_cli(a.config_path, "dkim", "keygen", "example.gov.vn").exit_code == 1  # "mail" exists
    txt = cli_dkim_key(a.config_path, "example.gov.vn", "s2026")
    assert txt.startswith(b"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")
    assert run_cli(a.config_path, "dkim", "keygen", "example.gov.vn", "--type", "ed25519").exit_code == 1  # exists
    ed = cli_dkim_key(a.config_path, "example.gov.vn", "ed2026", "--type", "ed25519")
    assert ed.startswith(b"v=DKIM1; k=ed25519; p=") and len(ed) == len(b"v=DKIM1; k=ed25519; p=") + 44
    assert run_cli(a.config_path, "dkim", "keygen", "example.gov.vn", "--selector", "../x").exit_code == 1


async def test_submitted_message_is_queued_relayed_and_signed(pair):
    a, b, txt = pair
    with smtplib.SMTP(a.host, a.port("submission"), timeout=30) as client:
        client.login(SENDER, PASSWORD)
        client.sendmail(SENDER, [RCPT], (f"From: <{SENDER}>\r\nTo: <{RCPT}>\r\nSubject: submit\r\n\r\nhello\r\n").encode())
    store_b = b.open_store()
    try:
        (stored,) = await eventually(lambda: inbox_messages(store_b, RCPT), timeout=60)
    finally:
        store_b.close()
    keys = {b"mail._domainkey.example.gov.vn.": txt}
    assert dkim.verify(stored, dnsfunc=lambda name, timeout=5: keys.get(name))
    if INBOUND_AR:  # the served A signed twice; B verified both (RFC 8463)
        head = stored[: stored.index(b"\r\n\r\n")]
        assert b"dkim=pass header.d=example.gov.vn header.s=mail" in head
        assert b"dkim=pass header.d=example.gov.vn header.s=ed25519" in head
