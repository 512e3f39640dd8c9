"""Configuration loading: layering, file:line errors, byte sizes (R-QUOTA-1), path resolution."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from config.defaults import DEFAULT_PORTS, render_config
from config.loader import PROFILES, ConfigError, load_settings
from config.settings import Settings

GiB, MiB = 1024**3, 1024**2


def write(tmp_path: Path, text: str, name: str = "mailserver.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(path: Path, overrides: dict | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(path, overrides)
    return info.value


# -- errors name file, line, key and what was expected ------------------------------------------

def test_wrong_type_error_names_file_line_key_and_expected_range(tmp_path):
    path = write(tmp_path, """\
        hostname: mail.example.gov.vn
        listeners:
          smtp:
            address: 127.0.0.1
            port: abc
        """)
    err = error_of(path)
    assert str(err) == f"{path}:5: listeners.smtp.port: expected an integer 0-65535, got 'abc'"
    assert (err.file, err.line, err.key) == (str(path), 5, "listeners.smtp.port")


def test_port_out_of_range_is_refused(tmp_path):
    path = write(tmp_path, "listeners:\n  imap: {port: 70000}\n")
    assert str(error_of(path)) == f"{path}:2: listeners.imap.port: expected an integer 0-65535, got 70000"


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    path = write(tmp_path, "limits:\n  max_recipients: 5\n  max_mesage_size: 1MB\n")
    err = error_of(path)
    assert err.line == 3 and err.key == "limits.max_mesage_size"
    assert "unknown key" in err.message and "max_message_size" in err.message


def test_unknown_top_level_key_is_refused(tmp_path):
    err = error_of(write(tmp_path, "hostname: a\nhostnmae: b\n"))
    assert (err.line, err.key) == (2, "hostnmae")


def test_every_problem_is_reported_in_line_order(tmp_path):
    path = write(tmp_path, "quota:\n  mailbox: 2 gigs\nlisteners:\n  smtp: {port: x}\n")
    lines = str(error_of(path)).splitlines()
    assert [line.split(":")[1] for line in lines] == ["2", "4"]


def test_missing_listener_port_is_reported(tmp_path):
    err = error_of(write(tmp_path, "listeners:\n  pop3: {address: 0.0.0.0}\n"))
    assert (err.line, err.key, err.message) == (2, "listeners.pop3.port", "required key missing")


def test_yaml_syntax_error_has_a_line(tmp_path):
    err = error_of(write(tmp_path, "hostname: a\nlisteners:\n  smtp: {port: 25\n"))
    assert err.line is not None and err.line >= 3 and "invalid YAML" in err.message


def test_duplicate_key_is_refused(tmp_path):
    err = error_of(write(tmp_path, "hostname: a\nhostname: b\n"))
    assert (err.line, err.key, err.message) == (2, "hostname", "duplicate key")


def test_missing_file_says_how_to_create_one(tmp_path):
    err = error_of(tmp_path / "nope.yaml")
    assert "no such file" in err.message and "mailserver init" in err.message


def test_top_level_must_be_a_mapping(tmp_path):
    assert "mapping" in error_of(write(tmp_path, "- a\n- b\n")).message


def test_unknown_profile_is_refused_at_its_line(tmp_path):
    err = error_of(write(tmp_path, "hostname: a\nprofile: hanoi\n"))
    assert (err.line, err.key) == (2, "profile")
    assert all(name in err.message for name in PROFILES)


def test_override_errors_name_the_overrides(tmp_path):
    err = error_of(write(tmp_path, "hostname: a\n"), {"listeners.smtp.port": "x"})
    assert err.file == "--set" and err.key == "listeners.smtp.port"


# -- byte sizes (R-QUOTA-1) ------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("2GB", 2 * GiB), ("2GiB", 2 * GiB), ("1.5GiB", 3 * GiB // 2), ("20MB", 20 * MiB),
    ("20MiB", 20 * MiB), ("15 MiB", 15 * MiB), ("512KB", 512 * 1024), ("20000000", 20_000_000),
    ("0", 0), ("null", None), ("2G", 2 * GiB), ("20 MB", 20 * MiB),
])
def test_sizes_are_binary_units_or_exact_byte_counts(tmp_path, text, expected):
    settings = load_settings(write(tmp_path, f"quota:\n  mailbox: {text}\n"))
    assert settings.quota.mailbox == expected


@pytest.mark.parametrize("text", ["2 gigs", "-1", "'-1'", "1.5", "2 PB", "GB", "true", "[1]"])
def test_bad_sizes_are_refused_listing_accepted_forms(tmp_path, text):
    path = write(tmp_path, f"hostname: a\nquota:\n  attachment: {text}\n")
    err = error_of(path)
    assert (err.line, err.key) == (3, "quota.attachment")
    assert "20MB" in err.message and "1.5GiB" in err.message and "byte count" in err.message


def test_limits_accept_sizes_too(tmp_path):
    settings = load_settings(write(tmp_path, "limits:\n  max_message_size: 25MiB\n"))
    assert settings.limits.max_message_size == 25 * MiB


# -- layering: defaults → profile → file → overrides ------------------------------------------------

def test_profile_values_apply_when_the_file_does_not_set_them(tmp_path):
    settings = load_settings(write(tmp_path, "profile: hcm-q4\n"))
    assert settings.quota.mailbox == 1 * GiB and settings.quota.attachment == 15 * MiB  # R-QUOTA-1
    assert settings.passwords.min_classes == 4  # R-PASS-3
    assert settings.limits == Settings().limits  # untouched keys keep the built-in defaults


def test_file_wins_over_profile_key_by_key(tmp_path):
    settings = load_settings(write(tmp_path, "profile: hcm-q4\nquota:\n  mailbox: 3GiB\n"))
    assert settings.quota.mailbox == 3 * GiB
    assert settings.quota.attachment == 15 * MiB  # the sibling still comes from the profile


def test_overrides_win_over_the_file(tmp_path):
    path = write(tmp_path, "profile: none\nlisteners:\n  smtp: {address: 127.0.0.1, port: 2525}\n")
    settings = load_settings(path, {"listeners": {"smtp": {"port": 0}}, "profile": "lamdong"})
    assert settings.listeners.smtp.port == 0 and settings.listeners.smtp.address == "127.0.0.1"
    assert settings.profile == "lamdong" and settings.address_rule == "lamdong"


def test_null_listener_turns_the_service_off(tmp_path):
    settings = load_settings(write(tmp_path, "listeners:\n  smtp: null\n  imap: {port: 1143}\n"))
    assert settings.listeners.smtp is None and settings.listeners.imap.port == 1143


@pytest.mark.parametrize("profile, checks", [
    ("molisa", {"address_rule": "molisa", "passwords.initial_change_hours": 24,
                "lifecycle.revoke_after_notice_days": 2}),
    ("lamdong", {"address_rule": "lamdong", "quota.mailbox": 2 * GiB, "quota.attachment": 20 * MiB,
                 "lifecycle.revoke_after_inactive_months": 3, "lifecycle.notify_unit": True}),
    ("most", {"passwords.min_length": 8, "passwords.min_classes": 3, "passwords.reject_account_name": True,
              "lifecycle.lock_after_inactive_months": 6, "lifecycle.revoke_after_inactive_months": 12}),
    ("moj", {"domains": ("moj.gov.vn",), "address_rule": "moj"}),
    ("hcm-q4", {"address_rule": "hcm-q4", "domains": ("tphcm.gov.vn",), "passwords.unlock_wait_days": 5,
                "passwords.max_age_months": 3, "passwords.first_login_grace_hours": 1,
                "lifecycle.lock_after_inactive_months": 3, "lifecycle.delete_after_inactive_months": 6}),
    ("none", {"address_rule": "none", "quota.mailbox": 2 * GiB}),
])
def test_shipped_profiles_carry_their_regulation_values(tmp_path, profile, checks):
    settings = load_settings(write(tmp_path, f"profile: {profile}\n"))
    for dotted, expected in checks.items():
        value = settings
        for part in dotted.split("."):
            value = getattr(value, part)
        assert value == expected, dotted


def test_every_profile_has_a_file():
    assert set(PROFILES) == {"molisa", "lamdong", "most", "moj", "hcm-q4", "none"}


# -- relative paths are relative to the file ---------------------------------------------------------

def test_relative_paths_resolve_against_the_config_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, """\
        data_dir: store
        database: {url: "sqlite:///db/mail.db"}
        tls: {cert: certs/c.pem, key: ../k.pem}
        """, name="etc/mailserver.yaml")
    s = load_settings(Path("etc/mailserver.yaml"))
    etc = tmp_path / "etc"
    assert s.data_dir == etc / "store"
    assert s.database.url == f"sqlite:///{etc}/db/mail.db" and s.database.url.startswith("sqlite:////")
    assert s.tls.cert == etc / "certs/c.pem" and s.tls.key == tmp_path / "k.pem"
    assert path.parent == etc


def test_unset_paths_default_to_the_config_directory(tmp_path):
    s = load_settings(write(tmp_path, "hostname: a\n"))
    assert s.data_dir == tmp_path
    assert s.tls.cert == tmp_path / "tls/cert.pem" and s.tls.key == tmp_path / "tls/key.pem"
    assert s.database.url == f"sqlite:///{tmp_path}/mail.db"


def test_paths_follow_data_dir_when_only_it_is_set(tmp_path):
    s = load_settings(write(tmp_path, "data_dir: /srv/mail\n"))
    assert s.tls.cert == Path("/srv/mail/tls/cert.pem") and s.database.url == "sqlite:////srv/mail/mail.db"


@pytest.mark.parametrize("url", [
    "postgresql://mail@db.example.gov.vn/mail", "sqlite:////var/lib/mail.db", "sqlite:///:memory:",
    "postgresql+psycopg://u:p@127.0.0.1:5432/test",
])
def test_absolute_and_server_urls_are_kept(tmp_path, url):
    s = load_settings(write(tmp_path, f"database:\n  url: '{url}'\n"))
    assert s.database.url == url


# -- the file init writes -----------------------------------------------------------------------------

def test_init_file_round_trips_with_dev_ports_on_loopback(tmp_path):
    text = render_config(profile="most", hostname="mail.most.gov.vn", domains=["most.gov.vn"])
    s = load_settings(write(tmp_path, text))
    assert s.profile == "most" and s.hostname == "mail.most.gov.vn" and s.domains == ("most.gov.vn",)
    assert s.data_dir == tmp_path and s.database.url == f"sqlite:///{tmp_path}/mail.db"
    assert {name: l.port for name, l in s.listeners if l} == DEFAULT_PORTS
    assert {l.address for _, l in s.listeners if l} == {"127.0.0.1"}
    assert s.quota == load_settings(write(tmp_path, "profile: most\n", "p.yaml")).quota  # profile not masked


def test_every_commented_setting_in_the_init_file_is_valid_and_shows_the_default(tmp_path):
    text = render_config(profile="none", hostname="h", domains=["example.gov.vn"])
    uncommented = re.sub(r"(?m)^#(?=\S|  )", "", text)
    assert uncommented != text
    s = load_settings(write(tmp_path, uncommented))
    defaults = Settings()
    for section in ("limits", "passwords", "quota", "lifecycle", "search", "address_rule"):
        assert getattr(s, section) == getattr(defaults, section), section
    assert s.database.inline_blob_limit == defaults.database.inline_blob_limit
    assert s.listeners.web is not None and s.routes


def test_init_file_with_a_data_dir_elsewhere(tmp_path):
    text = render_config(profile="none", hostname="h", domains=["x.gov.vn"], data_dir="../var", listen="0.0.0.0")
    s = load_settings(write(tmp_path, text, "etc/mailserver.yaml"))
    assert s.data_dir == tmp_path / "var" and s.tls.cert == tmp_path / "var/tls/cert.pem"
    assert s.database.url == f"sqlite:///{tmp_path}/var/mail.db"
    assert s.listeners.smtp.address == "0.0.0.0"
