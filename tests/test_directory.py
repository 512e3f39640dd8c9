"""Directory (R-DIR-1): Vietnamese collation (pure), the five export formats, what is listed (both
backends), and the CLI in a subprocess."""

from __future__ import annotations

import base64
import csv
import io
import json
import random
import unicodedata

import pytest

from mailserver.accounts.directory import Entry, collation_key, entries, person_sort_key, render
from storage.api import AccountKind, AccountState
from storage.sql import SqlStore

pytestmark = pytest.mark.requirement("R-DIR-1")

D = "example.gov.vn"


def _sorted(words):
    shuffled = list(words)
    random.Random(4).shuffle(shuffled)
    return sorted(shuffled, key=collation_key)


def test_d_with_stroke_sorts_after_d_and_before_e():
    assert _sorted(["Em", "Đào", "Dung", "Đa", "Duy"]) == ["Dung", "Duy", "Đa", "Đào", "Em"]


@pytest.mark.parametrize("order", [
    ["a", "ă", "â", "b"],
    ["e", "ê", "g"],
    ["o", "ô", "ơ", "p"],
    ["u", "ư", "v"],
    ["i", "k", "l"],
    ["x", "y"],
])
def test_vietnamese_letter_order(order):
    assert _sorted(order) == order


def test_tones_in_dictionary_order_ngang_huyen_hoi_nga_sac_nang():
    assert _sorted(["cạ", "cá", "cã", "cả", "cà", "ca"]) == ["ca", "cà", "cả", "cã", "cá", "cạ"]
    assert _sorted(["mạ", "má", "mã", "mả", "mà", "ma"]) == ["ma", "mà", "mả", "mã", "má", "mạ"]


def test_letters_before_tones_and_word_by_word():
    # the base letters decide first ("ác" after every tone of "a"), then the tone of that word
    assert _sorted(["ác", "ạ", "a", "ách", "à"]) == ["a", "à", "ạ", "ác", "ách"]
    # compounds of a syllable come before the next tone of it, as in dictionaries
    assert _sorted(["cà", "ca dao", "ca", "cà chua"]) == ["ca", "ca dao", "cà", "cà chua"]


def test_precomposed_and_decomposed_input_sort_the_same():
    word = "Nguyễn Thị Ánh"
    nfd = unicodedata.normalize("NFD", word)
    assert collation_key(word)[0] == collation_key(nfd)[0]


def test_case_only_breaks_ties():
    assert collation_key("an")[0] == collation_key("An")[0]
    assert _sorted(["Bình", "an", "Ân"]) == ["an", "Ân", "Bình"]


def test_digits_before_letters():
    assert _sorted(["Quận b", "Quận 4", "Quận 10", "Quận a"])[:2] == ["Quận 10", "Quận 4"]


def test_persons_sort_by_given_name_then_full_name():
    names = ["Trần Thị Bình", "Nguyễn Văn An", "Lê Đức Anh", "Phạm Dũng", "Hồ Đông", "Vũ Ánh", "Bùi Văn An"]
    assert sorted(names, key=person_sort_key) == [
        "Bùi Văn An", "Nguyễn Văn An", "Lê Đức Anh", "Vũ Ánh", "Trần Thị Bình", "Phạm Dũng", "Hồ Đông"]


def _items():
    return [
        Entry(AccountKind.PERSONAL, "Đặng Văn Đức", "ducdv@x.gov.vn", (), "Bộ / Văn phòng", "Chánh Văn phòng", "02439439060"),
        Entry(AccountKind.UNIT, "Văn phòng; Bộ, <b>", "vp@x.gov.vn", ("vanphong@x.gov.vn",), "Bộ / Văn phòng", "", ""),
        Entry(AccountKind.GROUP, "Nhóm tin học", "tinhoc@x.gov.vn", (), "", "", ""),
        Entry(AccountKind.PERSONAL, "Nguyễn Thị Minh Khai Một Cái Tên Thật Là Dài Để Gấp Dòng Trong vCard",
              "khaintm@x.gov.vn", (), "", "", ""),
    ]


def test_csv_has_a_vietnamese_header_and_every_address():
    rows = list(csv.reader(io.StringIO(render(_items(), "csv"))))
    assert rows[0] == ["Loại", "Tên", "Địa chỉ thư", "Địa chỉ khác", "Đơn vị", "Chức vụ", "Điện thoại"]
    assert rows[2] == ["Đơn vị", "Văn phòng; Bộ, <b>", "vp@x.gov.vn", "vanphong@x.gov.vn", "Bộ / Văn phòng", "", ""]


def test_json_round_trips():
    data = json.loads(render(_items(), "json", title="Danh bạ"))
    assert data["title"] == "Danh bạ" and data["entries"][0]["name"] == "Đặng Văn Đức"
    assert data["entries"][1]["other_addresses"] == ["vanphong@x.gov.vn"]


def test_vcard_lines_are_folded_at_75_octets_and_values_escaped():
    text = render(_items(), "vcf")
    physical = text.split("\r\n")
    assert all(len(line.encode("utf-8")) <= 75 for line in physical)
    unfolded = text.replace("\r\n ", "")
    assert "FN:Văn phòng\\; Bộ\\, <b>" in unfolded
    assert "FN:Nguyễn Thị Minh Khai Một Cái Tên Thật Là Dài Để Gấp Dòng Trong vCard" in unfolded
    assert "N:Đặng;Đức;Văn;;" in unfolded and "KIND:org" in unfolded and "KIND:group" in unfolded
    assert "TEL;TYPE=work,voice;VALUE=uri:tel:02439439060" in unfolded
    assert unfolded.count("BEGIN:VCARD") == 4 == unfolded.count("END:VCARD")


def test_ldif_encodes_non_ascii_values_in_base64():
    text = render(_items(), "ldif", base_dn="dc=x,dc=gov,dc=vn")
    assert "dn: mail=ducdv@x.gov.vn,ou=directory,dc=x,dc=gov,dc=vn" in text
    cn = next(line for line in text.splitlines() if line.startswith("cn::"))
    assert base64.b64decode(cn[5:]).decode() == "Đặng Văn Đức"
    assert "mail: vanphong@x.gov.vn" in text
    assert all(line.isascii() for line in text.splitlines())


def test_html_is_standalone_and_escaped():
    page = render(_items(), "html", title="Danh bạ <Bộ>")
    assert page.startswith("<!DOCTYPE html>") and '<html lang="vi">' in page and '<meta charset="utf-8">' in page
    assert "<title>Danh bạ &lt;Bộ&gt;</title>" in page
    assert "Văn phòng; Bộ, &lt;b&gt;" in page and "<b>" not in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert '<a href="mailto:vanphong@x.gov.vn">' in page
    assert page.index("Hộp thư đơn vị") < page.index("Hộp thư nhóm") < page.index("Hộp thư cá nhân")


def test_unknown_format_is_refused():
    with pytest.raises(ValueError):
        render([], "xml")


@pytest.fixture
def store(store_url, tmp_path):
    store = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    store.accounts.add_domain(D)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def org(store):
    return store.org


def test_directory_lists_receiving_units_groups_persons_in_order(org, store):
    s = store
    head = s.accounts.create_account(f"an@{D}", "Nguyễn Văn An", "h", state=AccountState.ACTIVE)
    s.accounts.create_account(f"duc@{D}", "Đặng Văn Đức", "h")
    gone = s.accounts.create_account(f"gone@{D}", "Lê Thị Đã Nghỉ", "h")
    s.accounts.set_state(gone.id, AccountState.REVOKED)
    locked = s.accounts.create_account(f"khoa@{D}", "Phạm Văn Khóa", "h")
    s.accounts.set_state(locked.id, AccountState.LOCKED)
    org.add_unit("Bộ Tư pháp", "btp", f"btp@{D}", "h")
    vp = org.add_unit("Văn phòng", "vp", f"vanphong@{D}", "h", parent="btp", head_account_id=head.id)
    org.add_address(vp.account.id, f"vp@{D}")
    org.set_profile(head.id, unit_id=vp.id, title="Chánh Văn phòng", phone="02462739300", mobile="0912345678")
    org.add_group(f"all@{D}", "Toàn cơ quan")
    items = entries(org.directory_rows())
    assert [e.address for e in items] == [f"btp@{D}", f"vanphong@{D}", f"all@{D}", f"an@{D}", f"duc@{D}", f"khoa@{D}"]
    vp_entry, an = items[1], items[3]
    assert vp_entry.other_addresses == (f"vp@{D}",) and vp_entry.unit == "Bộ Tư pháp / Văn phòng"
    assert (an.unit, an.title, an.phone) == ("Bộ Tư pháp / Văn phòng", "Chánh Văn phòng", "02462739300")
    assert "0912345678" not in render(items, "json")  # mobiles are not published


def test_directory_export_cli_writes_every_format(make_server, tmp_path):
    srv = make_server(start=False)
    srv.add_account(f"an@{srv.domain}", "Mk!12345678x", name="Nguyễn Văn An")
    srv.add_account(f"duc@{srv.domain}", "Mk!12345678x", name="Đặng Văn Đức")
    for fmt in ("csv", "json", "vcf", "ldif", "html"):
        out = tmp_path / f"danhba.{fmt}"
        result = srv.cli("directory", "export", "--format", fmt, "-o", str(out))
        assert "2 entries" in result.stderr
        data = out.read_bytes()
        assert data.startswith(b"\xef\xbb\xbf") == (fmt == "csv")
    text = srv.cli("directory", "export", "--format", "json").stdout
    assert [e["name"] for e in json.loads(text)["entries"]] == ["Nguyễn Văn An", "Đặng Văn Đức"]
    bad = srv.cli("directory", "export", "--format", "xml", check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
