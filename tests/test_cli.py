"""The operator CLI: exit status 0/1/2, one-line messages, never a traceback; init and accounts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from config.loader import load_settings
from mailserver.cli import cli
from mailserver.policy.passwords import check_password

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "example.gov.vn"
EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
STRONG = "Mật-khẩu-2024"  # passes R-PASS-2 and R-PASS-3 (all four classes)


def run(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real entry point, as an operator's script runs it."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("MAILSERVER_CONFIG", "MAILSERVER_DEBUG")}
    full_env.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run([sys.executable, "-m", "mailserver", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """An initialised data directory shared by the account tests (each uses its own addresses)."""
    root = tmp_path_factory.mktemp("cli")
    result = run(root, "init", "--domain", DOMAIN)
    assert result.returncode == EXIT_OK, result.stderr
    return root / "data"


@pytest.fixture
def mailserver(data):
    runner = CliRunner()

    def invoke(*args: str):
        result = runner.invoke(cli, ["--config", str(data / "mailserver.yaml"), *args])
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    return invoke


def field(output: str, name: str) -> str:
    match = re.search(rf"^{name}: (.*)$", output, re.M)
    assert match, output
    return match.group(1)


# -- init --------------------------------------------------------------------------------------------

def test_init_writes_config_certificate_and_migrated_database(data):
    settings = load_settings(data / "mailserver.yaml")
    assert settings.data_dir == data and settings.domains == (DOMAIN,)
    assert settings.database.url == f"sqlite:///{data}/mail.db" and (data / "mail.db").exists()
    assert oct(settings.tls.key.stat().st_mode & 0o777) == "0o600"
    cert = x509.load_pem_x509_certificate(settings.tls.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"mail.example.gov.vn", "localhost"}
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    status = run(data.parent, "db", "status")
    assert status.returncode == EXIT_OK and "schema:" in status.stdout


def test_init_refuses_to_overwrite_an_existing_config(data):
    before = (data / "mailserver.yaml").read_bytes()
    result = run(data.parent, "init", "--profile", "most")
    assert result.returncode == EXIT_REFUSED
    assert "already exists" in result.stderr and "Traceback" not in result.stderr
    assert (data / "mailserver.yaml").read_bytes() == before


def test_init_with_profile_and_data_dir_uses_the_profile_domain(tmp_path):
    result = run(tmp_path, "init", "--profile", "hcm-q4", "--data-dir", "srv")
    assert result.returncode == EXIT_OK, result.stderr
    settings = load_settings(tmp_path / "srv" / "mailserver.yaml")
    assert settings.profile == "hcm-q4" and settings.domains == ("tphcm.gov.vn",)
    assert settings.hostname == "mail.tphcm.gov.vn" and settings.quota.mailbox == 1024**3
    assert settings.tls.cert == tmp_path / "srv/tls/cert.pem"


def test_init_with_an_unknown_profile_is_a_usage_error(tmp_path):
    result = run(tmp_path, "init", "--profile", "hanoi")
    assert result.returncode == EXIT_USAGE and not (tmp_path / "data").exists()


# -- config check and configuration errors -------------------------------------------------------------

def test_config_check_prints_ok_and_a_summary(data):
    result = run(data.parent, "config", "check")
    assert result.returncode == EXIT_OK
    assert result.stdout.startswith("OK: ") and "smtp 127.0.0.1:2525" in result.stdout


def test_config_check_reports_file_line_and_key_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("hostname: a\nlisteners:\n  smtp: {port: abc}\n")
    result = run(tmp_path, "config", "check", str(bad))
    assert result.returncode == EXIT_REFUSED
    assert f"{bad}:3: listeners.smtp.port: expected an integer 0-65535, got 'abc'" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_a_broken_config_stops_every_command_with_exit_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("hostname: a\nqouta: {mailbox: 1GB}\n")
    result = run(tmp_path, "--config", str(bad), "account", "list")
    assert result.returncode == EXIT_REFUSED and f"{bad}:2: qouta: unknown key" in result.stderr


def test_serve_with_an_explicit_missing_config_does_not_initialise(tmp_path):
    result = run(tmp_path, "--config", "nope/mailserver.yaml", "serve")
    assert result.returncode == EXIT_REFUSED and "no such file" in result.stderr
    assert not (tmp_path / "nope").exists() and not (tmp_path / "data").exists()


def test_first_serve_without_config_initialises_then_serves(tmp_path):
    any_port = [arg for name in ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "web")
                for arg in ("--set", f"listeners.{name}.port=0")]
    env = {k: v for k, v in os.environ.items() if k not in ("MAILSERVER_CONFIG", "MAILSERVER_DEBUG")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "mailserver", *any_port, "serve"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "serving" in line:
                break
        assert any("serving" in line for line in lines), "".join(lines)
        assert (tmp_path / "data/mailserver.yaml").exists() and (tmp_path / "data/tls/key.pem").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == EXIT_OK


def test_serve_refuses_an_unmigrated_database_with_the_command_to_run(tmp_path):
    assert run(tmp_path, "init").returncode == EXIT_OK
    (tmp_path / "data/mail.db").unlink()
    result = run(tmp_path, "serve")
    assert result.returncode == EXIT_REFUSED and "mailserver db upgrade" in result.stderr
    assert "Traceback" not in result.stderr
    assert run(tmp_path, "db", "status").returncode == EXIT_REFUSED
    assert run(tmp_path, "db", "upgrade").returncode == EXIT_OK
    assert run(tmp_path, "db", "status").returncode == EXIT_OK


def test_config_defaults_to_the_environment_variable(data, tmp_path):
    result = run(tmp_path, "config", "check", env={"MAILSERVER_CONFIG": str(data / "mailserver.yaml")})
    assert result.returncode == EXIT_OK and str(data / "mailserver.yaml") in result.stdout


def test_set_overrides_the_file_for_one_run(data):
    result = run(data.parent, "--set", "listeners.smtp.port=25", "--set", "quota.mailbox=3GiB", "config", "check")
    assert result.returncode == EXIT_OK and "smtp 127.0.0.1:25," in result.stdout and "mailbox 3 GiB" in result.stdout
    bad = run(data.parent, "--set", "listeners.smtp.port=abc", "config", "check")
    assert bad.returncode == EXIT_REFUSED
    assert bad.stderr.strip() == "Error: --set: listeners.smtp.port: expected an integer 0-65535, got 'abc'"
    assert run(data.parent, "--set", "nonsense", "config", "check").returncode == EXIT_USAGE


def test_usage_errors_exit_2(data):
    assert run(data.parent, "account", "add").returncode == EXIT_USAGE  # no NAME
    assert run(data.parent, "no-such-command").returncode == EXIT_USAGE
    assert run(data.parent, "account", "add", "An", "--address", "ân@example.gov.vn").returncode == EXIT_USAGE
    assert run(data.parent, "account", "add", "An", "--address", "not an address").returncode == EXIT_USAGE


# -- accounts -------------------------------------------------------------------------------------------

def test_account_add_prints_a_generated_password_that_works_and_must_be_changed(data, mailserver):
    result = mailserver("account", "add", "Nguyễn Văn An", "--address", "AnNV@Example.gov.vn")
    assert result.exit_code == EXIT_OK, result.output
    assert field(result.output, "address") == "annv@example.gov.vn"
    assert field(result.output, "state") == "must_change_password"  # R-PASS-1
    password = field(result.output, "password")
    assert authenticate(data, "annv@example.gov.vn", password)


def test_account_add_with_password_and_active_prints_no_password(data, mailserver):
    result = mailserver("account", "add", "Hộp thư Văn phòng", "--address", "vanphong@example.gov.vn",
                        "--password", STRONG, "--active")
    assert result.exit_code == EXIT_OK, result.output
    assert "password" not in result.output and field(result.output, "state") == "active"
    assert authenticate(data, "vanphong@example.gov.vn", STRONG)


def test_display_name_is_stored_nfc(data, mailserver):
    decomposed = unicodedata.normalize("NFD", "Trần Thị Bích")
    assert mailserver("account", "add", decomposed, "--address", "bichtt@example.gov.vn").exit_code == EXIT_OK
    shown = mailserver("account", "show", "bichtt@example.gov.vn").output
    assert "Trần Thị Bích" in shown and decomposed not in shown  # R-TEXT-1


def test_account_add_twice_is_refused_with_exit_1(mailserver):
    assert mailserver("account", "add", "Lê Văn C", "--address", "clv@example.gov.vn").exit_code == EXIT_OK
    result = mailserver("account", "add", "Lê Văn C", "--address", "clv@example.gov.vn")
    assert result.exit_code == EXIT_REFUSED and "clv@example.gov.vn already exists" in result.output


@pytest.mark.parametrize("password", ["short1A", "alllowercase", "weak-password", "DungPV@Example.gov.vn"])
def test_weak_passwords_are_refused(mailserver, password):
    result = mailserver("account", "add", "Phạm Văn Dũng", "--address", "dungpv@example.gov.vn", "--password", password)
    assert result.exit_code == EXIT_REFUSED and "password refused" in result.output  # R-PASS-2


def test_account_in_a_foreign_domain_is_refused(mailserver):
    result = mailserver("account", "add", "X", "--address", "x@other.gov.vn")
    assert result.exit_code == EXIT_REFUSED and "not a local domain" in result.output


def test_account_list_shows_every_account_in_a_table(mailserver):
    mailserver("account", "add", "Đặng Văn Em", "--address", "emdv@example.gov.vn")
    result = mailserver("account", "list")
    assert result.exit_code == EXIT_OK
    line = next(line for line in result.output.splitlines() if "emdv@example.gov.vn" in line)
    assert "Đặng Văn Em" in line and "must_change_password" in line and "2 GiB" in line


def test_account_show_lists_the_default_folders(mailserver):
    mailserver("account", "add", "Vũ Thị Hoa", "--address", "hoavt@example.gov.vn")
    result = mailserver("account", "show", "hoavt@example.gov.vn")
    assert result.exit_code == EXIT_OK
    assert all(folder in result.output for folder in ("INBOX", "Sent", "Drafts", "Trash", "Junk"))


@pytest.mark.requirement("R-PASS-4")
def test_passwd_prints_a_new_password_and_requires_a_change(data, mailserver):
    mailserver("account", "add", "Hồ Văn Giang", "--address", "gianghv@example.gov.vn", "--password", STRONG, "--active")
    result = mailserver("account", "passwd", "gianghv@example.gov.vn")
    assert result.exit_code == EXIT_OK and field(result.output, "state") == "must_change_password"  # R-PASS-4
    assert authenticate(data, "gianghv@example.gov.vn", field(result.output, "password"))
    assert not authenticate(data, "gianghv@example.gov.vn", STRONG)
    result = mailserver("account", "passwd", "gianghv@example.gov.vn", "--password", "Khác-hẳn-99", "--active")
    assert "password:" not in result.output and field(result.output, "state") == "active"


@pytest.mark.requirement("R-ACC-2")
def test_lock_stops_logins_and_unlock_requires_a_new_password(data, mailserver):
    mailserver("account", "add", "Ngô Văn Khoa", "--address", "khoanv@example.gov.vn", "--password", STRONG, "--active")
    assert mailserver("account", "lock", "khoanv@example.gov.vn").exit_code == EXIT_OK  # R-ACC-2
    assert not authenticate(data, "khoanv@example.gov.vn", STRONG)
    again = mailserver("account", "lock", "khoanv@example.gov.vn")
    assert again.exit_code == EXIT_REFUSED and "locked" in again.output
    result = mailserver("account", "unlock", "khoanv@example.gov.vn")
    assert result.exit_code == EXIT_OK and "must_change_password" in result.output
    assert authenticate(data, "khoanv@example.gov.vn", STRONG)
    assert mailserver("account", "unlock", "khoanv@example.gov.vn").exit_code == EXIT_REFUSED


def test_delete_removes_the_account(mailserver):
    mailserver("account", "add", "Tạ Văn Long", "--address", "longtv@example.gov.vn")
    refused = mailserver("account", "delete", "longtv@example.gov.vn")  # no terminal, no --yes
    assert refused.exit_code == EXIT_REFUSED and "--yes" in refused.output
    assert mailserver("account", "delete", "longtv@example.gov.vn", "--yes").exit_code == EXIT_OK
    result = mailserver("account", "show", "longtv@example.gov.vn")
    assert result.exit_code == EXIT_REFUSED and "no account longtv@example.gov.vn" in result.output


def test_unknown_account_is_one_line_exit_1_from_the_real_entry_point(data):
    for command in ("show", "lock", "unlock", "delete", "passwd"):
        result = run(data.parent, "account", command, "nobody@example.gov.vn")
        assert result.returncode == EXIT_REFUSED, command
        assert result.stderr.strip() == "Error: no account nobody@example.gov.vn", command


# -- addresses derived from names (R-ADDR-*) -------------------------------------------------------------

def test_address_is_derived_from_the_name_when_not_given(mailserver):
    first = mailserver("account", "add", "Trương Văn Bình")
    same = mailserver("account", "add", "Trương Văn Bình")  # R-BOX-1: one mailbox per person
    assert same.exit_code == EXIT_REFUSED and "binhtv@example.gov.vn" in same.output and "--another-person" in same.output
    second = mailserver("account", "add", "Trương Văn Bình", "--another-person")  # a namesake
    assert field(first.output, "address") == "binhtv@example.gov.vn"  # R-ADDR-1 (profile none → molisa form)
    assert field(second.output, "address") == "binhtrva@example.gov.vn"


def test_strict_profile_derives_its_address_and_generates_a_four_class_password(tmp_path):
    assert run(tmp_path, "init", "--profile", "hcm-q4").returncode == EXIT_OK
    result = run(tmp_path, "account", "add", "Nguyễn Văn An")
    assert result.returncode == EXIT_OK, result.stderr
    assert field(result.stdout, "address") == "annv.q4@tphcm.gov.vn"  # R-ADDR-3
    password = field(result.stdout, "password")
    assert len(password) >= 12
    assert check_password(password, account_name="annv.q4@tphcm.gov.vn", min_length=8, min_classes=4) == []  # R-PASS-3
    weak = run(tmp_path, "account", "add", "Lê Thị Mai", "--password", "Matkhau-dai")  # 3 classes only
    assert weak.returncode == EXIT_REFUSED and "password refused" in weak.stderr


def authenticate(data: Path, address: str, password: str) -> bool:
    from mailserver.app import open_store
    from mailserver.accounts.auth import Authenticator

    settings = load_settings(data / "mailserver.yaml")
    store = open_store(settings)
    try:
        return Authenticator(store, settings.passwords).authenticate(address, password) is not None
    finally:
        store.close()
