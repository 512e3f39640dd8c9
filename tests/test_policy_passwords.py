"""Password rules (R-PASS-2, R-PASS-3) and initial passwords."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from config.loader import load_settings

from mailserver.policy.passwords import (
    PASSWORD_RULES,
    character_classes,
    check_password,
    generate_password,
)

pytestmark = pytest.mark.requirement("R-PASS-2", "R-PASS-3")

MOST = {"min_length": 8, "min_classes": 3}  # R-PASS-2
HCM_Q4 = {"min_length": 8, "min_classes": 4}  # R-PASS-3
ACCOUNT = "annv@most.gov.vn"

# (rule, password, expected reason codes)
CASES = [
    (MOST, "Abcdef12", []),  # exactly 8, three classes
    (MOST, "Abcde12", ["too_short"]),  # 7
    (MOST, "abcdefgh", ["too_few_classes"]),
    (MOST, "abcdef12", ["too_few_classes"]),  # two classes
    (MOST, "abcdef1!", []),  # lower, digit, special
    (MOST, "ABCDEF1!", []),  # upper, digit, special
    (MOST, "Mậtkhẩu!", []),  # Vietnamese letters count by case; ! is special
    (MOST, "Đặngthịđào1", []),
    (MOST, "annv", ["too_short", "equals_account_name", "too_few_classes"]),
    (MOST, "ANNV@most.gov.vn", ["equals_account_name"]),  # case ignored
    (MOST, "Annv@Most.gov.vn", ["equals_account_name"]),
    (MOST, "Annv1234", []),  # contains, but is not, the account name
    (MOST, "Abc\x00def12", ["control_character"]),
    (MOST, "Abcdef12\n", ["control_character"]),
    (MOST, "Abc def12", []),  # a space is a special character
    (HCM_Q4, "Abcdef12", ["too_few_classes"]),
    (HCM_Q4, "Abcdef1!", []),
    (HCM_Q4, "Abcde1!", ["too_short"]),
    (HCM_Q4, "", ["too_short", "too_few_classes"]),
]


@pytest.mark.parametrize(("rule", "password", "expected"), CASES)
def test_r_pass_check_password(rule: dict[str, int], password: str, expected: list[str]) -> None:
    """R-PASS-2/3: refusal reasons at the boundaries of length, classes and account name."""
    found = check_password(password, account_name=ACCOUNT, **rule)
    assert found == expected


def test_r_pass_2_password_equal_to_local_part_is_refused() -> None:
    """R-PASS-2: 'not equal to the account name' also covers the local part alone."""
    reasons = check_password("Khaintm1", account_name="KHAINTM1@molisa.gov.vn")
    assert reasons == ["equals_account_name"]


def test_r_pass_reasons_carry_vietnamese_and_english_text() -> None:
    """Each reason has a code plus a Vietnamese and an English sentence for the user."""
    (reason,) = check_password("Ab1!", account_name=ACCOUNT)
    assert reason.code == "too_short"
    assert "ít nhất 8 ký tự" in reason.vi
    assert "at least 8 characters" in reason.en


def test_r_pass_missing_classes_are_named() -> None:
    """A too-simple password is told which classes it lacks."""
    (reason,) = check_password("abcdefgh", account_name=ACCOUNT, min_classes=4)
    assert "chữ hoa" in reason.vi and "chữ số" in reason.vi
    assert "upper-case letters" in reason.en and "lower-case" not in reason.en


def test_r_pass_character_classes() -> None:
    """Classes: upper, lower, digit, special (anything not alphanumeric)."""
    assert character_classes("Ă") == (True, False, False, False)
    assert character_classes("đ9") == (False, True, True, False)
    assert character_classes("#") == (False, False, False, True)


@pytest.mark.parametrize("seed", range(200))
def test_r_pass_3_generated_password_passes_strictest_rule(seed: int) -> None:
    """Generated initial passwords always pass hcm-q4's all-four-classes rule."""
    password = generate_password(rng=random.Random(seed))
    assert len(password) == 12
    assert check_password(password, account_name=ACCOUNT, **HCM_Q4) == []
    assert not set(password) & set("O0Il1o|,;\"'` ")


def test_r_pass_generated_password_length_and_minimum() -> None:
    """Length is honoured; below 8 it is refused (R-PASS-2/3)."""
    assert len(generate_password(8)) == 8
    assert len(generate_password(32)) == 32
    with pytest.raises(ValueError):
        generate_password(7)


def test_r_pass_generated_passwords_differ() -> None:
    """The default generator draws from the OS CSPRNG: 50 passwords are all different."""
    assert len({generate_password() for _ in range(50)}) == 50


def test_r_pass_profile_rules() -> None:
    """hcm-q4 needs all four classes; the others 3 of 4; all at least 8 characters."""
    assert PASSWORD_RULES["hcm-q4"] == (8, 4)
    assert PASSWORD_RULES["most"] == (8, 3)
    assert set(PASSWORD_RULES) == {"molisa", "lamdong", "most", "moj", "hcm-q4", "none"}


@pytest.mark.parametrize("profile", sorted(PASSWORD_RULES))
def test_r_pass_rules_match_the_shipped_yaml_profile(profile: str, tmp_path: Path) -> None:
    """config/profiles/<name>.yaml sets the same length and classes as PASSWORD_RULES."""
    config = tmp_path / "mailserver.yaml"
    config.write_text(f"profile: {profile}\n")
    passwords = load_settings(config).passwords
    assert (passwords.min_length, passwords.min_classes) == PASSWORD_RULES[profile]
