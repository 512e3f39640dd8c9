"""Vietnamese text end to end in storage.mime (R-TEXT-1): corpus, legacy decoders, detection.

The corpus (tests/corpus/*.eml, made by tests/corpus/make_corpus.py from iconv and hand-written
VNI) says in expected.json what each subject, sender, file name and body snippet decodes to.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from storage.mime import decode_addresses, decode_header, filename, fold, guess_vietnamese, parse
from storage.mime.detect import score_vietnamese
from storage.mime.vietnamese import decode_tcvn3, decode_viscii, decode_vni

pytestmark = pytest.mark.requirement("R-TEXT-1")

CORPUS = Path(__file__).parent / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def leaf_parts(part: dict):
    if "parts" in part:
        for child in part["parts"]:
            yield from leaf_parts(child)
    else:
        yield part


def test_corpus_has_at_least_30_messages_each_with_expectations() -> None:
    files = sorted(p.name for p in CORPUS.glob("*.eml"))
    assert len(files) >= 30
    assert files == sorted(EXPECTED)
    assert all(EXPECTED[name] for name in files)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message_decodes_to_expected_text(name: str) -> None:
    expected = EXPECTED[name]
    meta = parse((CORPUS / name).read_bytes())
    search = meta["search"]
    if "subject" in expected:
        assert search["subject"] == expected["subject"]
    if "from" in expected:
        assert search["from"] == expected["from"]
    if "filenames" in expected:
        names = [filename(part) for part in leaf_parts(meta["structure"]) if filename(part)]
        assert names == expected["filenames"]
    for snippet in expected.get("body", []):
        assert snippet in search["body"]
        assert fold(snippet) in fold(search["body"])
    for absent in expected.get("body_absent", []):
        assert absent not in search["body"]
    if "nested_subject" in expected:
        nested = [p for p in meta["structure"]["parts"] if "message" in p][0]["message"]
        assert decode_header(nested["envelope"]["subject"]) == expected["nested_subject"]
    for key in ("subject", "from", "to", "headers", "body"):
        assert unicodedata.is_normalized("NFC", search[key])


def test_corpus_envelope_keeps_raw_header_text() -> None:
    meta = parse((CORPUS / "03-split-b-mid-letter.eml").read_bytes())
    assert meta["envelope"]["subject"].startswith("=?utf-8?B?")  # IMAP ENVELOPE carries words as sent


def test_tonless_search_finds_toned_subjects() -> None:
    meta = parse((CORPUS / "19-tcvn3-encoded-word-labelled-latin1.eml").read_bytes())
    assert "cong van so 12" in fold(meta["search"]["subject"])
    assert "he thong thu dien tu" in fold(meta["search"]["subject"])


# -- decoders, against fixed published-table facts ---------------------------------------------

def test_viscii_rfc1456_capitals_in_c0_and_letters() -> None:
    assert decode_viscii(b"\x02\x05\x06\x14\x19\x1e") == "ẲẴẪỶỸỴ"
    assert decode_viscii(b"\x9c\xd0\xf0\xdf\xbd") == "ỦĐđươ"


def test_tcvn3_letters_and_windows_punctuation() -> None:
    assert decode_tcvn3(b"C\xabng v\xa8n s\xe8") == "Công văn số"
    assert decode_tcvn3(b"\xa1\xa2\xa3\xa4\xa5\xa6\xa7") == "ĂÂÊÔƠƯĐ"
    assert decode_tcvn3(b"\x93x\x94") == "\u201cx\u201d"  # VN3 leaves 0x80-0x9F to Windows-1252
    # Capitals typed with an upper-case ABC font: small toned codes inside capital words.
    assert decode_tcvn3(b"C\xe9NG H\xdfA X\xb7 H\xe9I Ch\xf1 ngh\xdca, H\xb5 N\xe9i") == (
        "CỘNG HÒA XÃ HỘI Chủ nghĩa, Hà Nội"
    )


def test_all_capitals_tcvn3_heading_is_detected() -> None:
    heading = b"C\xe9NG H\xdfA X\xb7 H\xe9I CH\xf1 NGH\xdcA VI\xd6T NAM"
    assert guess_vietnamese(heading, None) == ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "tcvn3")


def test_vni_marks_attach_only_to_vowels() -> None:
    assert decode_vni("Ñöôøng ñi".encode("cp1252")) == "Đường đi"
    assert decode_vni("KHOÂNG COÙ".encode("cp1252")) == "KHÔNG CÓ"
    assert decode_vni("tænh, nghóa, vò, îa".encode("cp1252")) == "tỉnh, nghĩa, vị, ỵa"
    assert decode_vni("café".encode("cp1252")) == "café"  # é after a consonant stays é


def test_guess_prefers_utf8_and_legacy_labels() -> None:
    assert guess_vietnamese("Việt Nam".encode(), "iso-8859-1") == ("Việt Nam", "utf-8")
    assert guess_vietnamese(b"Vi\xd6t Nam", "x-viet-tcvn") == ("Việt Nam", "tcvn3")
    assert guess_vietnamese(b"plain", None) == ("plain", "us-ascii")


def test_guess_keeps_western_european_text_as_windows_1252() -> None:
    for sample in ("Déjà vu, garçon, señor", "Où est le maïs? Très bien.", "Straße für Müller", "São Paulo"):
        assert guess_vietnamese(sample.encode("cp1252"), "iso-8859-1") == (sample, "windows-1252")


def test_guess_trusts_a_specific_label_that_decodes() -> None:
    assert guess_vietnamese("Привет".encode("koi8-r"), "koi8-r") == ("Привет", "koi8-r")


def test_score_prefers_real_vietnamese_over_mojibake() -> None:
    assert score_vietnamese("Công văn số 12") > score_vietnamese("C«ng v¨n sè 12")
    assert score_vietnamese("Công văn số 12") > score_vietnamese("CÃ´ng vÄƒn sá»‘ 12")


# -- decode_header -----------------------------------------------------------------------------

def test_decode_header_nfc_and_whitespace_rules() -> None:
    assert decode_header("=?utf-8?Q?a?=   =?utf-8?Q?b?=") == "ab"  # between words: dropped
    assert decode_header("x =?utf-8?Q?b?= y") == "x b y"  # around words: kept
    assert decode_header("=?UTF-8?B?" + "VMahzIBp" + "?=") == "Tời"  # NFD inside a word → NFC
    assert decode_header("=?utf-8?B?not base64!?=") == "=?utf-8?B?not base64!?="


def test_decode_header_never_raises_on_odd_codecs() -> None:
    for charset in ("undefined", "unicode_escape", "base64", "rot13", "utf-16", ""):
        decode_header(f"=?{charset}?Q?=FF=FE?= tail")
    assert decode_header(b"\xff\xfe\x00raw") != ""


# -- header text we write ------------------------------------------------------------------------

def test_encode_header_round_trips_and_keeps_words_short() -> None:
    import email.header

    from storage.mime import encode_address, encode_header

    text = unicodedata.normalize("NFD", "Thông báo: thư của bạn chưa được gửi tới người nhận ở Ủy ban") * 3
    encoded = encode_header(text)
    assert encoded.isascii()
    assert all(len(word) <= 75 for word in encoded.split())
    assert decode_header(encoded) == unicodedata.normalize("NFC", text)
    assert str(email.header.make_header(email.header.decode_header(encoded))) == unicodedata.normalize("NFC", text)
    assert encode_header("plain ASCII") == "plain ASCII"
    assert encode_header(unicodedata.normalize("NFD", "Việt"), utf8=True) == "Việt"
    assert decode_addresses(encode_address("Nguyễn Văn A", "a@example.gov.vn")) == "Nguyễn Văn A <a@example.gov.vn>"
    assert encode_address('Phòng "HC"', "hc@x.vn", utf8=True) == '"Phòng \\"HC\\"" <hc@x.vn>'
    assert encode_address("Van thu", "vt@x.vn") == "Van thu <vt@x.vn>"
    assert encode_address("Smith, John", "j@x.org") == '"Smith, John" <j@x.org>'
