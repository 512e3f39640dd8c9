"""Address rules (R-ADDR-1..4) on real-looking Vietnamese names, per profile."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from config.loader import load_settings

from mailserver.policy.addresses import (
    ADDRESS_RULES,
    AddressRule,
    InvalidLocalPart,
    InvalidName,
    OperatorChoiceRequired,
    ascii_fold_name,
    derive_local_part,
    split_name,
    unit_local_part,
    validate_local_part,
)

pytestmark = pytest.mark.requirement("R-ADDR-1", "R-ADDR-2", "R-ADDR-3", "R-ADDR-4")

NINE_HOLDERS = {"annv"} | {f"annv{n}" for n in range(2, 10)}

# (rule, full name, local parts already taken, expected local part)
PERSONAL = [
    # R-ADDR-1 molisa art. 7.3: annv, then anngva, then a number from 1 on the first form
    ("molisa", "Nguyễn Văn An", set(), "annv"),
    ("molisa", "Nguyễn Văn An", {"annv"}, "anngva"),
    ("molisa", "Nguyễn Văn An", {"annv", "anngva"}, "annv1"),
    ("molisa", "Nguyễn Văn An", {"annv", "anngva", "annv1"}, "annv2"),
    ("molisa", "Ngô Văn An", {"annv", "anngva"}, "annv1"),  # Ngô also gives "ng"
    ("molisa", "Nguyễn Vũ An", {"annv"}, "anngvu"),
    ("molisa", "Nguyễn Thị Minh Khai", set(), "khaintm"),
    ("molisa", "Nguyễn Thị Minh Khai", {"khaintm"}, "khaingthmi"),
    ("molisa", "Nguyễn Thị Minh Khai", {"khaintm", "khaingthmi"}, "khaintm1"),
    ("molisa", "Trần Đức Đạt", set(), "dattd"),
    ("molisa", "Đặng Thị Đào", set(), "daodt"),
    ("molisa", "Đỗ Đình Đông", {"dongdd"}, "dongdodi"),
    ("molisa", "Lê Lợi", set(), "loil"),
    ("molisa", "Lê Lợi", {"loil"}, "loile"),
    ("molisa", "Thảo", set(), "thao"),
    ("molisa", "Thảo", {"thao"}, "thao1"),  # one word: no second form, straight to numbers
    ("molisa", "Phạm Ngọc Ánh", set(), "anhpn"),
    ("molisa", "Hoàng Thị Thu Hương", set(), "huonghtt"),
    ("molisa", "Bùi Quang Huy", set(), "huybq"),
    ("molisa", "Vũ Thị Ý", set(), "yvt"),
    ("molisa", "Vũ Thị Ý", {"yvt"}, "yvuth"),
    ("molisa", "Ông Ích Khiêm", set(), "khiemoi"),
    ("molisa", "Tôn Nữ Thị Ninh", set(), "ninhtnt"),
    ("molisa", "Lương Thế Vinh", set(), "vinhlt"),
    ("molisa", "Huỳnh Tấn Phát", set(), "phatht"),
    ("molisa", "Quách Thị Hồng Nhung", set(), "nhungqth"),
    ("molisa", "Root", set(), "root1"),  # reserved role address is never given to a person
    # R-ADDR-2 lamdong art. 5.2: the Nth holder gets digit N, from the second on
    ("lamdong", "Nguyễn Văn An", set(), "annv"),
    ("lamdong", "Nguyễn Văn An", {"annv"}, "annv2"),
    ("lamdong", "Nguyễn Văn An", {"annv", "annv2"}, "annv3"),
    ("lamdong", "Nguyễn Văn An", NINE_HOLDERS, "annv10"),
    ("lamdong", "Nguyễn Văn Ân", {"annv"}, "annv2"),  # same once diacritics are gone
    ("lamdong", "Nguyễn Thị Minh Khai", set(), "khaintm"),
    ("lamdong", "Nguyễn Thị Minh Khai", {"khaintm"}, "khaintm2"),
    ("lamdong", "Đoàn Thị Điểm", set(), "diemdt"),
    ("lamdong", "Nguyên", set(), "nguyen"),
    ("lamdong", "Nguyên", {"nguyen"}, "nguyen2"),
    ("lamdong", "Trịnh Công Sơn", {"sontc", "sontc3"}, "sontc2"),  # a freed ordinal is reused
    # R-ADDR-3 hcm-q4 art. 4.1: <account>.q4, numbering before the suffix
    ("hcm-q4", "Nguyễn Văn An", set(), "annv.q4"),
    ("hcm-q4", "Nguyễn Văn An", {"annv.q4"}, "annv2.q4"),
    ("hcm-q4", "Nguyễn Văn An", {"ANNV.Q4"}, "annv2.q4"),  # taken compared case-insensitively
    ("hcm-q4", "Lê Thị Hồng Gấm", set(), "gamlth.q4"),
    ("hcm-q4", "Đinh Bộ Lĩnh", set(), "linhdb.q4"),
    # most, moj, none: molisa's rule
    ("most", "Nguyễn Văn An", {"annv"}, "anngva"),
    ("moj", "Nguyễn Văn An", {"annv", "anngva"}, "annv1"),
    ("none", "Trần Hưng Đạo", set(), "daoth"),
    # messy input: spaces, upper case, decomposed (NFD) letters
    ("molisa", "  nguyễn   văn   AN  ", set(), "annv"),
    ("molisa", "NGUYỄN VĂN AN", set(), "annv"),
    ("molisa", unicodedata.normalize("NFD", "Nguyễn Văn An"), set(), "annv"),
    ("lamdong", unicodedata.normalize("NFD", "Đặng Thùy Trâm"), {"tramdt"}, "tramdt2"),
    ("molisa", "Y-Moan Ê-nuôl", set(), "enuoly"),  # a hyphenated word stays one word
]


@pytest.mark.parametrize(("rule", "name", "taken", "expected"), PERSONAL)
def test_r_addr_personal_local_part(rule: str, name: str, taken: set[str], expected: str) -> None:
    """R-ADDR-1..4: each profile derives the expected local part, collisions included."""
    assert derive_local_part(name, taken, rule) == expected


def test_r_addr_table_covers_at_least_forty_names() -> None:
    """The seed table holds at least 40 names (R-ADDR-1); it must not shrink below that."""
    assert len(PERSONAL) >= 40
    assert len({unicodedata.normalize("NFC", name) for _, name, _, _ in PERSONAL}) >= 30


def test_r_addr_derived_parts_are_valid_local_parts() -> None:
    """Every derived personal address passes the operator validation (ASCII dot-atom)."""
    for rule, name, taken, _ in PERSONAL:
        assert validate_local_part(derive_local_part(name, taken, rule)) is None


def test_r_addr_1_sequence_of_registrations_gives_distinct_addresses() -> None:
    """R-ADDR-1: five people named Nguyễn Văn An registered one after another never collide."""
    taken: set[str] = set()
    for _ in range(5):
        taken.add(derive_local_part("Nguyễn Văn An", taken, "molisa"))
    assert taken == {"annv", "anngva", "annv1", "annv2", "annv3"}


def test_r_addr_2_sequence_of_registrations_follows_order() -> None:
    """R-ADDR-2: the second, third … holder get 2, 3 …; annv1 is never issued."""
    taken: set[str] = set()
    issued = []
    for _ in range(4):
        issued.append(derive_local_part("Phan Văn An", taken, "lamdong"))
        taken.add(issued[-1])
    assert issued == ["anpv", "anpv2", "anpv3", "anpv4"]


def test_r_addr_tuned_rule_object_is_accepted() -> None:
    """A profile may tune the rule: an AddressRule instance works like a named one."""
    rule = AddressRule("custom", two_letter_fallback=False, number_start=100)
    assert derive_local_part("Nguyễn Văn An", {"annv"}, rule) == "annv100"


def test_r_addr_unknown_rule_name_is_refused() -> None:
    """A misspelt profile name is an error, not a silent default."""
    with pytest.raises(ValueError, match="unknown address rule"):
        derive_local_part("Nguyễn Văn An", set(), "lamdog")


def test_r_addr_overlong_derived_address_asks_the_operator() -> None:
    """A name that would give more than 64 characters (RFC 5321) is left to the operator."""
    with pytest.raises(OperatorChoiceRequired):
        derive_local_part("Nguyễn " + "a" * 70, set(), "molisa")


@pytest.mark.parametrize("name", ["", "   ", "--- ...", "\u0301\u0300"])
def test_r_addr_name_without_letters_is_refused(name: str) -> None:
    """A name with nothing to build an address from raises InvalidName."""
    with pytest.raises(InvalidName):
        derive_local_part(name, set(), "molisa")


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("Đặng Thị Ánh Tuyết", "Dang Thi Anh Tuyet"),
        ("Ưng Hoàng Phúc", "Ung Hoang Phuc"),
        ("Ơn Trời", "On Troi"),
        ("Đđ", "Dd"),
        (unicodedata.normalize("NFD", "Nguyễn Ngọc Ngạn"), "Nguyen Ngoc Ngan"),
        ("Kỷ Yếu Hội Nghị", "Ky Yeu Hoi Nghi"),
    ],
)
def test_r_addr_4_ascii_fold_name(name: str, folded: str) -> None:
    """R-ADDR-4: diacritics removed, đ → d, NFC and NFD input alike, result ASCII."""
    assert ascii_fold_name(name) == folded
    assert ascii_fold_name(name).isascii()


def test_r_addr_split_name_orders_family_middle_given() -> None:
    """Vietnamese order: family, middle names, given name; one-word names have only a given."""
    assert split_name("Nguyễn Thị Minh Khai") == ("nguyen", ["thi", "minh"], "khai")
    assert split_name("Lê Lợi") == ("le", [], "loi")
    assert split_name("Thảo") == (None, [], "thao")


# (rule, unit name, taken, expected)
UNITS = [
    ("lamdong", "Sở Thông tin và Truyền thông", set(), "stttt"),
    ("lamdong", "Sở Nông nghiệp và Phát triển nông thôn", set(), "snnptnt"),
    ("lamdong", "Ủy ban nhân dân huyện Đức Trọng", set(), "ubndhdt"),
    ("lamdong", "Ban Quản lý các khu công nghiệp tỉnh Lâm Đồng", set(), "bqlckcntld"),  # 10: allowed
    ("molisa", "Trung tâm Thông tin", set(), "tttt"),
    ("molisa", "Vụ Kế hoạch - Tài chính", set(), "vkhtc"),
    ("hcm-q4", "Ủy ban nhân dân Phường 1", set(), "ubndp1.q4"),
    ("hcm-q4", "Văn phòng Ủy ban nhân dân", set(), "vpubnd.q4"),
    ("most", unicodedata.normalize("NFD", "Cục Thông tin khoa học"), set(), "cttkh"),
]


@pytest.mark.parametrize(("rule", "unit", "taken", "expected"), UNITS)
def test_r_addr_unit_local_part_initials(rule: str, unit: str, taken: set[str], expected: str) -> None:
    """R-ADDR-1..3: a unit's local part is the initials of its name (numbers kept whole)."""
    assert unit_local_part(unit, rule, taken) == expected


def test_r_addr_2_unit_longer_than_ten_asks_the_operator() -> None:
    """R-ADDR-2: eleven or more initials → the operator chooses, offered a candidate that is
    itself within the 10 characters (and free)."""
    name = "Văn phòng Đoàn đại biểu Quốc hội và Hội đồng nhân dân tỉnh"
    with pytest.raises(OperatorChoiceRequired) as err:
        unit_local_part(name, "lamdong", set())
    assert err.value.candidate == "vpddbqhhdn"
    with pytest.raises(OperatorChoiceRequired) as err:
        unit_local_part(name, "lamdong", {"vpddbqhhdn"})
    assert err.value.candidate == "vpddbqhhd2"
    assert err.value.code == "operator_choice_required"
    assert unit_local_part(name, "molisa", set()) == "vpddbqhhdndt"  # molisa sets no limit


def test_r_addr_2_unit_with_own_domain_uses_it() -> None:
    """R-ADDR-2: a unit that already has a domain name takes its name from the domain."""
    assert unit_local_part("Ủy ban nhân dân thành phố Đà Lạt", "lamdong", set(), domain="dalat.gov.vn") == "dalat"


def test_r_addr_unit_collision_asks_the_operator() -> None:
    """Two units with the same initials: the rule does not number units, the operator decides."""
    with pytest.raises(OperatorChoiceRequired) as err:
        unit_local_part("Thanh tra tỉnh", "lamdong", {"TTT"})
    assert err.value.candidate == "ttt2"  # a free one, not the taken one


@pytest.mark.parametrize(
    "local", ["annv", "nguyen.van.an", "an_nv-2", "annv.q4", "a" * 64, "o'brien", "x+tag"]
)
def test_r_addr_valid_operator_local_part(local: str) -> None:
    """Operator-given local parts that are ASCII dot-atoms of at most 64 octets are accepted."""
    assert validate_local_part(local) is None


@pytest.mark.parametrize(
    "local", ["", ".annv", "annv.", "an..nv", "ân", "a" * 65, "an nv", 'an"nv', "an@nv", "an(nv)"]
)
def test_r_addr_invalid_operator_local_part(local: str) -> None:
    """Empty, badly dotted, non-ASCII, too long or non-atext local parts are reported."""
    error = validate_local_part(local)
    assert isinstance(error, InvalidLocalPart)
    assert str(error)


def test_r_addr_every_profile_has_a_rule() -> None:
    """Each profile of config.settings.Settings has an address rule (no silent fallback)."""
    assert set(ADDRESS_RULES) == {"molisa", "lamdong", "most", "moj", "hcm-q4", "none"}


@pytest.mark.parametrize("profile", sorted(ADDRESS_RULES))
def test_r_addr_shipped_profile_names_a_known_rule(profile: str, tmp_path: Path) -> None:
    """Each shipped YAML profile's address_rule is one this module knows."""
    config = tmp_path / "mailserver.yaml"
    config.write_text(f"profile: {profile}\n")
    assert load_settings(config).address_rule in ADDRESS_RULES
