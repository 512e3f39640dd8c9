"""Bulk provisioning from the registration form (most Phụ lục 03): sheet reading (pure), checks
with line numbers, all-or-nothing creation on both backends, result sheets, and the CLI."""

from __future__ import annotations

import csv
import os
import stat

import pytest
from argon2 import PasswordHasher

from config.settings import Passwords, Settings
from mailserver.accounts import provisioning as prov
from mailserver.policy.passwords import check_password
from storage.api import AccountKind, AccountState
from storage.errors import Exists
from storage.api import NewPerson
from storage.sql import SqlStore

D = "example.gov.vn"
FORM = (
    "Tên Đơn vị: Văn phòng Bộ;;;;;;\n"
    'TT;"Họ và tên\nngười sử dụng";"Phòng ban/ Đơn vị\ncông tác";Chức vụ;Điện thoại;Di động;'
    '"Hộp thư điện tử dự phòng (nếu có)"\n'
    "1;Nguyễn Văn An;vp;Chuyên viên;024.3943 9060;0912 345 678;an@gmail.com\n"
    "2;Nguyễn Văn An;Văn phòng;Chuyên viên chính;;+84 987 654 321;\n"
    "3;Đặng Thị Ánh;KT;Kế toán trưởng;;;\n"
    "4;;;;;;\n"
    ";;;;;;\n"
)


# -- reading the sheet (pure) ---------------------------------------------------------------------

@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_sheet_with_or_without_bom_any_delimiter(bom, delimiter):
    data = bom + FORM.replace(";", delimiter).encode()
    sheet = prov.read_sheet(data)
    assert sheet.delimiter == delimiter
    assert [(r.line, r.tt, r.name, r.unit) for r in sheet.rows] == [
        (5, "1", "Nguyễn Văn An", "vp"), (6, "2", "Nguyễn Văn An", "Văn phòng"), (7, "3", "Đặng Thị Ánh", "KT")]
    assert sheet.rows[0].phone == "024.3943 9060" and sheet.rows[1].mobile == "+84 987 654 321"
    assert sheet.ignored_columns == ["Hộp thư điện tử dự phòng (nếu có)"]


def test_headers_match_without_diacritics_or_case():
    data = b"stt,HO VA TEN,don vi,chuc danh,so dien thoai,dien thoai di dong\n1,Le Van Be,vp,,,\n"
    row = prov.read_sheet(data).rows[0]
    assert (row.line, row.name, row.unit) == (2, "Le Van Be", "vp")
    assert [prov.column_of(h) for h in ("Họ và tên", "Phòng ban/Đơn vị", "Chức vụ", "Điện thoại", "Di động",
                                        "Địa chỉ Đơn vị", "TT")] == ["name", "unit", "title", "phone", "mobile", None, "tt"]


def test_decomposed_names_are_stored_precomposed():
    data = "Họ và tên,Đơn vị\nNguyễn Văn An,vp\n".encode()
    import unicodedata
    nfd = unicodedata.normalize("NFD", data.decode()).encode()
    assert prov.read_sheet(nfd).rows[0].name == "Nguyễn Văn An"


def test_not_utf8_is_refused_with_its_line():
    data = "Họ và tên;Đơn vị\nAn;vp\n".encode() + b"\xd0\xf9c;vp\n"  # TCVN3-style bytes, not UTF-8
    with pytest.raises(prov.ImportRefused) as err:
        prov.read_sheet(data)
    assert err.value.errors[0][0] == 3 and "UTF-8" in err.value.errors[0][1]


def test_sheet_without_a_name_column_is_refused():
    with pytest.raises(prov.ImportRefused):
        prov.read_sheet(b"a;b;c\n1;2;3\n")


@pytest.mark.parametrize("text,mobile,expected", [
    ("", True, ""),
    ("0912 345 678", True, "0912345678"),
    ("0912.345.678", True, "0912345678"),
    ("+84 912 345 678", True, "0912345678"),
    ("912345678", True, "0912345678"),  # the leading zero a spreadsheet dropped
    ("0212345678", True, None),  # not a mobile prefix
    ("091234567", True, None),
    ("09123456789", True, None),
    ("0912-abc-678", True, None),
    ("024.3943 9060", False, "02439439060"),
    ("(024) 3943-9060", False, "02439439060"),
    ("0912345678", False, "0912345678"),
    ("12345", False, None),
    ("024 3943 9060 máy lẻ 12", False, None),
])
def test_phone_numbers(text, mobile, expected):
    assert prov.normalise_phone(text, mobile=mobile) == expected


# -- planning and creating (both backends) --------------------------------------------------------

@pytest.fixture
def org(store_url, tmp_path):
    store = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    store.accounts.add_domain(D)
    o = store.org
    o.add_unit("Bộ Khoa học và Công nghệ", "bkhcn", f"bkhcn@{D}", "h")
    o.add_unit("Văn phòng", "vp", f"vanphong@{D}", "h", parent="bkhcn")
    o.add_unit("Phòng Kế toán", "kt", f"ketoan@{D}", "h", parent="bkhcn")
    try:
        yield o
    finally:
        store.close()


SETTINGS = Settings(domains=(D,), address_rule="molisa",
                    passwords=Passwords(time_cost=1, memory_cost=1024, min_length=8, min_classes=4))


def test_plan_derives_addresses_in_sheet_order(org):
    org.accounts.create_account(f"annv@{D}", "Nguyễn Văn An", "h")
    planned = prov.plan(prov.read_sheet(FORM.encode()), org, SETTINGS)
    assert [(p.row.line, p.unit.code, p.address, p.phone, p.mobile) for p in planned] == [
        (5, "vp", f"anngva@{D}", "02439439060", "0912345678"),
        (6, "vp", f"annv1@{D}", "", "0987654321"),
        (7, "kt", f"anhdt@{D}", "", ""),
    ]


def test_bad_rows_are_reported_with_line_numbers_and_nothing_created(org):
    sheet = (
        "TT,Họ và tên,Phòng ban/Đơn vị,Điện thoại,Di động\n"
        "1,Nguyễn Văn An,vp,,0912345678\n"   # line 2: fine
        "2,,vp,024 3943 9060,\n"             # line 3: empty name
        "3,Trần Bình,Phòng Không Có,,\n"     # line 4: unknown unit
        "4,Nguyễn  Văn An,VP,,0912 345 678\n"  # line 5: the person of line 2 again
        "5,Lê Cường,kt,12345,\n"             # line 6: malformed phone
        "6,Lê Dũng,kt,,0212345678\n"         # line 7: malformed mobile
        "7,Phạm Em,,,\n"                     # line 8: no unit
    )
    before = len(org.accounts.list_accounts())
    with pytest.raises(prov.ImportRefused) as err:
        prov.plan(prov.read_sheet(sheet.encode()), org, SETTINGS)
    lines = {line: message for line, message in err.value.errors}
    assert sorted(lines) == [3, 4, 5, 6, 7, 8]
    assert "empty name" in lines[3] and "unknown unit" in lines[4] and "line 2" in lines[5]
    assert "phone" in lines[6] and "mobile" in lines[7] and "no unit" in lines[8]
    assert len(org.accounts.list_accounts()) == before


def test_ambiguous_unit_name_asks_for_the_code(org):
    org.add_unit("Văn phòng", "vp2", f"vp2@{D}", "h", parent="kt")
    with pytest.raises(prov.ImportRefused) as err:
        prov.plan(prov.read_sheet("Họ và tên,Đơn vị\nLê Văn Tám,Văn phòng\n".encode()), org, SETTINGS)
    assert "ambiguous" in err.value.errors[0][1] and "vp2" in err.value.errors[0][1]


def test_person_already_registered_is_refused(org, tmp_path):
    data = "Họ và tên,Đơn vị,Di động\nLê Văn Tám,vp,0912345678\n".encode()
    prov.execute(prov.plan(prov.read_sheet(data), org, SETTINGS), org, SETTINGS, tmp_path / "one")
    with pytest.raises(prov.ImportRefused) as err:
        prov.plan(prov.read_sheet(data), org, SETTINGS)
    assert err.value.errors == [(2, "Lê Văn Tám is already registered in Văn phòng")]


def test_execute_creates_accounts_profiles_and_private_result_sheets(org, tmp_path):
    planned = prov.plan(prov.read_sheet(FORM.encode()), org, SETTINGS)
    sheets = prov.execute(planned, org, SETTINGS, tmp_path / "out", delimiter=";")
    assert sorted(p.name for p in sheets) == ["kt.csv", "vp.csv"]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    vp_sheet = tmp_path / "out" / "vp.csv"
    assert stat.S_IMODE(os.stat(vp_sheet).st_mode) == 0o600
    rows = list(csv.reader(vp_sheet.read_text("utf-8-sig").splitlines(), delimiter=";"))
    assert rows[0][:6] == ["TT", "Họ và tên", "Phòng ban/Đơn vị", "Chức vụ", "Địa chỉ thư điện tử", "Mật khẩu ban đầu"]
    assert [r[4] for r in rows[1:]] == [f"annv@{D}", f"anngva@{D}"]
    for row in rows[1:]:
        account = org.accounts.get_account(row[4])
        assert account.kind is AccountKind.PERSONAL and account.state is AccountState.MUST_CHANGE_PASSWORD
        assert PasswordHasher().verify(account.password_hash, row[5])  # R-PASS-1: the printed one works
        assert check_password(row[5], account_name=row[4], min_length=8, min_classes=4) == []  # R-PASS-3
    profile = org.get_profile(org.accounts.get_account(f"annv@{D}").id)
    assert (profile.title, profile.phone, profile.mobile) == ("Chuyên viên", "02439439060", "0912345678")
    assert profile.unit_id == org.get_unit("vp").id
    with pytest.raises(prov.ImportRefused):  # never overwrites a sheet of initial passwords
        prov.execute(planned, org, SETTINGS, tmp_path / "out")


def test_create_people_is_all_or_nothing(org):
    before = len(org.accounts.list_accounts())
    people = [NewPerson(f"p{i}@{D}", f"Người {i}", "h", None) for i in range(20)]
    people.insert(10, NewPerson(f"vanphong@{D}", "Trùng Địa Chỉ", "h", None))
    with pytest.raises(Exists):
        org.create_people(people)
    assert len(org.accounts.list_accounts()) == before
    assert org.accounts.get_account(f"p0@{D}") is None


# -- CLI ------------------------------------------------------------------------------------------

def test_import_cli_dry_run_errors_and_success(make_server, tmp_path):
    srv = make_server(start=False)
    srv.cli("unit", "add", "Văn phòng", "--code", "vp", "--address", f"vanphong@{srv.domain}")
    srv.cli("unit", "add", "Phòng Kế toán", "--code", "kt", "--address", f"ketoan@{srv.domain}")
    good = tmp_path / "dang-ky.csv"
    good.write_bytes(b"\xef\xbb\xbf" + FORM.encode())
    bad = tmp_path / "sai.csv"
    bad.write_text("Họ và tên;Đơn vị;Di động\nLê Một;vp;\n;vp;0912345678\nLê Ba;nope;\n", encoding="utf-8")

    refused = srv.cli("account", "import", str(bad), check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "sai.csv:3: empty name" in refused.stderr and "sai.csv:4: unknown unit 'nope'" in refused.stderr
    assert "nothing created" in refused.stderr

    dry = srv.cli("account", "import", str(good), "--dry-run")
    assert "annv@" in dry.stdout and "nothing was changed" in dry.stdout
    assert "annv@" not in srv.cli("account", "list").stdout

    done = srv.cli("account", "import", str(good), "--out", str(tmp_path / "kq"))
    assert "created 3 account(s)" in done.stdout
    listing = srv.cli("account", "list").stdout
    assert f"annv@{srv.domain}" in listing and f"anhdt@{srv.domain}" in listing
    assert (tmp_path / "kq" / "vp.csv").exists() and (tmp_path / "kq" / "kt.csv").exists()

    again = srv.cli("account", "import", str(good), "--out", str(tmp_path / "kq2"), check=False)
    assert again.returncode == 1 and "already registered" in again.stderr
    usage = srv.cli("account", "import", str(tmp_path / "missing.csv"), check=False)
    assert usage.returncode == 2
