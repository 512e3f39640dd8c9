"""Recognising Vietnamese text whose charset label is missing or wrong (R-TEXT-1).

Mail typed with the ABC (TCVN3), VNI and VISCII fonts is often labelled iso-8859-1, or not at
all. Each candidate reading is scored by how many words are plausible Vietnamese syllables
(initial + vowel group + final, one tone on the right vowel); mojibake such as ``c«ng`` or
``cÃ´ng`` cannot pass. Display and search only: stored bytes never change (R-SEC-2).
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata

from storage.mime.vietnamese import decode_cp1252, decode_legacy, vietnamese_charset

_WORD = re.compile(r"[^\s\d.,;:!?()\[\]{}\"'<>/\\|=+*&%$#@~^`_-]+")
_NUCLEI = (  # Vietnamese vowel groups, tones removed (the rhymes' vowels)
    "iêu oai oay oeo uây uôi uya uyê uyu ươi ươu yêu "
    "ai ao au ay âu ây eo êu ia iê iu oa oă oe oi ôi ơi oo ua uâ uê ui uô uơ uy ưa ưi ưu ươ yê "
    "a ă â e ê i o ô ơ u ư y"
).split()
_SYLLABLE = re.compile(
    r"(?:ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdđghklmnpqrstvx])?"
    rf"(?:{'|'.join(_NUCLEI)})(?:ch|ng|nh|[cmnpt])?"
)
_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")
_SAMPLE = 16384  # characters scored: plenty of words, bounded cost on binary junk


_SHAPED = frozenset("ăâêôơư")
_COMMON = frozenset(  # frequent syllables of official letters: break ties between lookalikes
    "của và các có là không được trong cho những một với người này đã về việc theo đến năm công văn "
    "số ngày tháng thông báo quyết định nghị ban nhân dân tỉnh huyện xã phòng sở bộ tại từ khi như làm "
    "thực hiện cơ quan đơn vị trực thuộc kính gửi đề đồng chí tăng cường quản lý thư điện tử hệ thống "
    "triển khai kế hoạch họp lịch tuần giờ cáo tình hình chương trình sẽ đang nhà nước chính phủ hội chủ "
    "tịch phó giám đốc trưởng cán tổ chức hành liệu bản mời tham dự nội dung ý kiến xin cảm ơn trân trọng "
    "an toàn dịch vụ giải hồ sơ phải còn nhiều hơn rất cũng nên vì gì đâu lại ra vào lên trên dưới sau "
    "trước mới lớn tốt đúng việt nam hà tiếng giấy chào tiếp".split()
)


def _letter_table() -> dict[str, tuple[str, bool]]:
    """Small Vietnamese letter → (letter without tone, has a tone), for quick syllable checks."""
    table = {c: (c, False) for c in "abcdefghijklmnopqrstuvwxyz"}
    for cp in list(range(0xE0, 0x1B1)) + list(range(0x1EA1, 0x1EFA)):
        ch = chr(cp)
        parts = unicodedata.normalize("NFD", ch)
        base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in _TONES))
        if ch.islower() and len(base) == 1 and (base in _SHAPED or base in "aeiouyđ" or base.isascii()):
            table[ch] = (base, any(c in _TONES for c in parts))
    return table


_LETTERS = _letter_table()


@functools.lru_cache(maxsize=8192)
def _syllable_score(word: str) -> int:
    """+2 for a plausible Vietnamese syllable with a Vietnamese mark (+1 more when common), -2 for
    a non-ASCII word that cannot be one (mojibake such as ``c«ng``, ``cÃ´ng``, ``sôì``), 0 for ASCII.

    Plausible: initial + vowel group + final per Vietnamese phonotactics, at most one tone, the tone
    on a vowel, and on the vowel with a shape mark when there is one; no upper case after lower.
    """
    if word.isascii():
        return 0
    if not word.isalpha():
        return -2
    if len(word) > 7:  # "nghiêng" is as long as a syllable gets
        return -1
    if any(a.islower() and b.isupper() and not b.isascii() for a, b in zip(word, word[1:])):
        return -2  # "sẰ": a toned capital after a small letter is a wrong reading
    lower = word.lower()
    tones, toned, letters = 0, "", []
    for ch in lower:
        entry = _LETTERS.get(ch)
        if entry is None:  # ß, ç, ñ, Cyrillic...: not a Vietnamese letter
            return -2
        letters.append(entry[0])
        if entry[1]:
            tones, toned = tones + 1, entry[0]
    bare = "".join(letters)
    shaped = any(c in _SHAPED for c in bare)
    if (tones <= 1 and _SYLLABLE.fullmatch(bare) and (tones or shaped or "đ" in bare)
            and (not tones or (toned in _SHAPED if shaped else toned in "aeiouy"))):
        return 3 if lower in _COMMON else 2
    return -2


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")


def _assess(text: str) -> tuple[int, bool]:
    """(score, convincing): the score sums the words' syllable scores; the reading is convincing
    when at least two thirds of its non-ASCII words are plausible syllables. That keeps French
    or German mail (où, maïs) from being re-read as VNI because one word happens to fit."""
    sample = text[:_SAMPLE]
    score = good = bad = 0
    for word in _WORD.findall(sample):
        value = _syllable_score(word)
        score += value
        good += value > 0
        bad += value < 0
    score -= 3 * len(_CONTROL.findall(sample))
    return score, good > 0 and good >= 2 * bad


def score_vietnamese(text: str) -> int:
    """How much ``text`` looks like correctly decoded Vietnamese (higher is better)."""
    return _assess(text)[0]


_WEAK_LABELS = frozenset(
    {"", "us-ascii", "ascii", "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "windows-1252", "cp1252",
     "iso-8859-15", "unknown-8bit", "x-unknown", "unknown", "default", "x-user-defined"}
)


def is_weak_label(charset: str | None) -> bool:
    """Labels that say nothing reliable: mail in legacy Vietnamese fonts is sent under them."""
    return (charset or "").strip().lower() in _WEAK_LABELS


_UNSAFE_CODECS = frozenset({"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "mbcs", "oem"})


def known_charset(name: str) -> bool:
    """A charset we decode with: ours, or a Python text codec that maps bytes to characters
    plainly (not unicode_escape and the like, which a sender could name to play tricks)."""
    if vietnamese_charset(name):
        return True
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # unknown, or not even a name (NUL bytes)
        return False
    return getattr(info, "_is_text_encoding", True) and info.name not in _UNSAFE_CODECS


def _python_decode(data: bytes, charset: str) -> str | None:
    try:
        return data.decode(charset)
    except (LookupError, ValueError):  # unknown codec, bad name, or bytes invalid in it
        return None


def guess_vietnamese(data: bytes, declared: str | None) -> tuple[str, str]:
    """Decode ``data`` whose label ``declared`` may be missing or wrong; returns (text, charset).

    A legacy Vietnamese label is trusted, and so is any other specific label (koi8-r, gb2312...)
    under which the bytes decode. Valid UTF-8 is UTF-8 whatever the label. Otherwise (no label,
    a weak one such as iso-8859-1, or one the bytes contradict) windows-1252, TCVN3, VNI, VISCII
    and windows-1258 readings of the first 16 KiB are scored by plausible Vietnamese syllables; a
    legacy reading must be convincing and beat windows-1252, so Western European text stays as
    it is. Never raises.
    """
    label = (declared or "").strip().lower()
    legacy = vietnamese_charset(label)
    if legacy:
        return decode_legacy(data, legacy), legacy
    if data.isascii():
        return data.decode("ascii"), "us-ascii"
    utf8 = _python_decode(data, "utf-8")
    if utf8 is not None:
        return unicodedata.normalize("NFC", utf8), "utf-8"
    if label and not is_weak_label(label) and known_charset(label):
        text = _python_decode(data, label)
        if text is not None:  # a specific label that decodes cleanly is believed
            return unicodedata.normalize("NFC", text), label
    sample = data[:_SAMPLE]
    best, best_score = "windows-1252", _assess(decode_cp1252(sample))[0]
    for name in ("tcvn3", "vni", "viscii", "windows-1258"):
        score, convincing = _assess(decode_legacy(sample, name))
        if convincing and score > best_score:
            best, best_score = name, score
    if best == "windows-1252":
        return unicodedata.normalize("NFC", decode_cp1252(data)), best
    return decode_legacy(data, best), best
