"""The operations sections of the configuration (config/ldap.py, config/backup.py, config/logs.py):
defaults, relative paths resolved against the file, and refusals naming file, line and key."""

from __future__ import annotations

from tests.test_config import error_of, write

from config.loader import load_settings


def test_defaults_leave_ldap_scheduled_backups_and_file_logging_off(tmp_path):
    s = load_settings(write(tmp_path, "hostname: mail.example.gov.vn\n"))
    assert not s.ldap.enabled and s.backup.schedule is None and s.logging.file is None
    assert s.logging.format == "text" and s.logging.level == "INFO"


def test_relative_paths_are_relative_to_the_file(tmp_path):
    s = load_settings(write(tmp_path, """\
        backup: {schedule: "01:30", dir: backups}
        ldap: {url: "ldaps://ldap.example.gov.vn:636", ca_file: ca.pem}
        logging: {file: log/mail.log, format: json}
        """))
    assert s.backup.dir == tmp_path / "backups" and s.ldap.ca_file == tmp_path / "ca.pem"
    assert s.logging.file == tmp_path / "log" / "mail.log"


def test_a_schedule_without_a_directory_is_refused(tmp_path):
    e = error_of(write(tmp_path, 'backup: {schedule: "01:30"}\n'))
    assert "backup" in str(e) and "backup.dir" in str(e)


def test_bad_ldap_url_time_and_format_name_the_key(tmp_path):
    assert "ldap.url" in str(error_of(write(tmp_path, "ldap: {url: http://x}\n")))
    assert "ldap.sync_at" in str(error_of(write(tmp_path, 'ldap: {url: "ldap://x", sync_at: "25:00"}\n')))
    assert "logging.format" in str(error_of(write(tmp_path, "logging: {format: xml}\n")))
    assert "unknown key" in str(error_of(write(tmp_path, "ldap: {urll: ldap://x}\n")))
    assert "start_tls" in str(error_of(write(tmp_path, 'ldap: {url: "ldaps://x", start_tls: true}\n')))
