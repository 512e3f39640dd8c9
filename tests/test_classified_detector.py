"""The stamp detector of the classified-document guard (R-SEC-3), pure: the corpus of letters
both ways, subjects, the diacritics rule and configured markings."""

from __future__ import annotations

import pytest

from tests.classified_docs import CORPUS, letter
from mailserver.policy.classified import Detector, fold

pytestmark = pytest.mark.requirement("R-SEC-3")

DETECTOR = Detector()

STAMPED = sorted(p.name for p in (CORPUS / "stamped").glob("*.txt"))
CLEAN = sorted(p.name for p in (CORPUS / "clean").glob("*.txt"))
EXPECTED = {
    "ke-hoach-toi-mat.txt": "Tối mật",
    "bao-cao-do-mat.txt": "Mật",
    "cong-van-tuyet-mat-khong-dau.txt": "Tuyệt mật",
    "to-trinh-khung.txt": "Mật",
    "quyet-dinh-chu-thuong.txt": "Tối mật",
    "bien-ban-do-mat-khong-dau.txt": "Tối mật",
    "phieu-trinh-sao.txt": "Tuyệt mật",
    "thong-bao-ngoac-kep.txt": "Mật",
}


def test_corpus_is_complete():
    assert len(STAMPED) >= 8 and len(CLEAN) >= 6
    assert set(STAMPED) == set(EXPECTED)


@pytest.mark.parametrize("name", STAMPED)
def test_stamped_letter_is_found_with_its_marking(name):
    found = DETECTOR.find(letter(f"stamped/{name}"))
    assert found is not None, name
    assert found.marking == EXPECTED[name]


@pytest.mark.parametrize("name", CLEAN)
def test_clean_letter_passes(name):
    assert DETECTOR.find(letter(f"clean/{name}")) is None


@pytest.mark.parametrize("subject, marking", [
    ("[MẬT] Kế hoạch kiểm tra", "Mật"),
    ("Tối mật - Báo cáo quý II", "Tối mật"),
    ("TUYỆT MẬT: phương án", "Tuyệt mật"),
    ("Fwd: [Tối mật] Kế hoạch", "Tối mật"),
    ("TL: (Mat) ke hoach", "Mật"),
    ("MẬT", "Mật"),
    ("Độ mật: Mật - Tờ trình", "Mật"),
])
def test_stamped_subjects(subject, marking):
    found = DETECTOR.find_in_subject(subject)
    assert found is not None and found.marking == marking


@pytest.mark.parametrize("subject", [
    "Mật khẩu mới của hộp thư",
    "Về việc bảo đảm bí mật thư tín",
    "Tập huấn bảo vệ bí mật nhà nước",
    "Mặt hàng văn phòng phẩm",
    "Re: Mất giấy tờ",
    "Matte paper order",
    "Mật độ dân số phường 2",
])
def test_ordinary_subjects_pass(subject):
    assert DETECTOR.find_in_subject(subject) is None


@pytest.mark.parametrize("line", ["Mất", "MẶT", "Tôi mất", "Toi mat xe", "Tài liệu mật", "bí mật", "Độ mật: thường"])
def test_words_with_other_marks_or_in_prose_are_not_stamps(line):
    assert DETECTOR.find_in_line(line) is None


@pytest.mark.parametrize("line", ["mật", "MAT", "Toi Mat", "│ TỐI MẬT │", "**TUYỆT MẬT**", "[ Mật ]", "Do mat - Mat"])
def test_any_case_with_or_without_diacritics(line):
    assert DETECTOR.find_in_line(line) is not None


def test_decomposed_text_is_normalised():
    import unicodedata

    assert DETECTOR.find_in_line(unicodedata.normalize("NFD", "TỐI MẬT")) == "Tối mật"


def test_configured_markings_and_patterns():
    d = Detector(markings=("Hạn chế",), labels=("Phạm vi",), patterns=(r"^khong phat hanh$",))
    assert d.find_in_line("HẠN CHẾ") == "Hạn chế"
    assert d.find_in_line("Phạm vi: hạn chế") == "Hạn chế"
    assert d.find_in_line("Không phát hành") == r"^khong phat hanh$"
    assert d.find_in_line("MẬT") is None


def test_fold():
    assert fold("ĐỘ MẬT") == "do mat"
