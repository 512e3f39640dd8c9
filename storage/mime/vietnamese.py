"""Legacy Vietnamese encodings and a detector for mislabelled text (R-TEXT-1).

Agencies still send mail typed with the ABC (TCVN3), VNI and VISCII fonts, often labelled
iso-8859-1 or not labelled at all. These decoders are for display and search only: the stored
bytes are never changed (R-SEC-2, signatures must keep verifying).

Tables:
- VISCII: RFC 1456 (VISCII 1.1), one byte per letter, six capitals in C0 positions.
- TCVN3: TCVN 5712:1993 VN3 (the "ABC" fonts). Bytes 0xA0-0xFF per the standard's table (shared
  with VN1); VN3 leaves 0x80-0x9F unassigned, so there the Windows-1252 meaning is kept (ABC text
  typed on Windows carries its punctuation). Capitals with tones are written with the lower-case
  codes in an upper-case font, so they decode to lower case: the bytes cannot say otherwise.
- VNI Windows: Windows-1252 bytes where a vowel is followed by a mark byte (``a`` + ``ù`` = á,
  ``o`` + ``â`` = ô, ``a`` + ``ê`` = ă); ơ ư đ ĩ ỉ ị ỵ have their own bytes.
- windows-1258: Python's codec (base letter + combining tone), then NFC.
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata

_VISCII_C0 = {0x02: 0x1EB2, 0x05: 0x1EB4, 0x06: 0x1EAA, 0x14: 0x1EF6, 0x19: 0x1EF8, 0x1E: 0x1EF4}
_VISCII_HIGH = (  # 0x80-0xFF, RFC 1456
    "1ea0 1eae 1eb0 1eb6 1ea4 1ea6 1ea8 1eac 1ebc 1eb8 1ebe 1ec0 1ec2 1ec4 1ec6 1ed0 "
    "1ed2 1ed4 1ed6 1ed8 1ee2 1eda 1edc 1ede 1eca 1ece 1ecc 1ec8 1ee6 0168 1ee4 1ef2 "
    "00d5 1eaf 1eb1 1eb7 1ea5 1ea7 1ea9 1ead 1ebd 1eb9 1ebf 1ec1 1ec3 1ec5 1ec7 1ed1 "
    "1ed3 1ed5 1ed7 1ee0 01a0 1ed9 1edd 1edf 1ecb 1ef0 1ee8 1eea 1eec 01a1 1edb 01af "
    "00c0 00c1 00c2 00c3 1ea2 0102 1eb3 1eb5 00c8 00c9 00ca 1eba 00cc 00cd 0128 1ef3 "
    "0110 1ee9 00d2 00d3 00d4 1ea1 1ef7 1eeb 1eed 00d9 00da 1ef9 1ef5 00dd 1ee1 01b0 "
    "00e0 00e1 00e2 00e3 1ea3 0103 1eef 1eab 00e8 00e9 00ea 1ebb 00ec 00ed 0129 1ec9 "
    "0111 1ef1 00f2 00f3 00f4 00f5 1ecf 1ecd 1ee5 00f9 00fa 0169 1ee7 00fd 1ee3 1eee"
)
_TCVN3_HIGH = (  # 0xA0-0xFF, TCVN 5712:1993
    "00a0 0102 00c2 00ca 00d4 01a0 01af 0110 0103 00e2 00ea 00f4 01a1 01b0 0111 1eb0 "
    "0300 0309 0303 0301 0323 00e0 1ea3 00e3 00e1 1ea1 1eb2 1eb1 1eb3 1eb5 1eaf 1eb4 "
    "1eae 1ea6 1ea8 1eaa 1ea4 1ec0 1eb7 1ea7 1ea9 1eab 1ea5 1ead 00e8 1ec2 1ebb 1ebd "
    "00e9 1eb9 1ec1 1ec3 1ec5 1ebf 1ec7 00ec 1ec9 1ec4 1ebe 1ed2 0129 00ed 1ecb 00f2 "
    "1ed4 1ecf 00f5 00f3 1ecd 1ed3 1ed5 1ed7 1ed1 1ed9 1edd 1edf 1ee1 1edb 1ee3 00f9 "
    "1ed6 1ee7 0169 00fa 1ee5 1eeb 1eed 1eef 1ee9 1ef1 1ef3 1ef7 1ef9 00fd 1ef5 1ed0"
)


def _cp1252_char(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)  # 0x81, 0x8D, 0x8F, 0x90, 0x9D: undefined in cp1252, keep latin-1


def _build_tables() -> tuple[str, str, str]:
    viscii = [chr(_VISCII_C0.get(b, b)) for b in range(0x80)]
    viscii += [chr(int(cp, 16)) for cp in _VISCII_HIGH.split()]
    tcvn3 = [chr(b) for b in range(0x80)] + [_cp1252_char(b) for b in range(0x80, 0xA0)]
    tcvn3 += [chr(int(cp, 16)) for cp in _TCVN3_HIGH.split()]
    cp1252 = [chr(b) for b in range(0x80)] + [_cp1252_char(b) for b in range(0x80, 0x100)]
    return "".join(viscii), "".join(tcvn3), "".join(cp1252)


_VISCII_TABLE, _TCVN3_TABLE, _CP1252_TABLE = _build_tables()
assert len(_VISCII_TABLE) == len(_TCVN3_TABLE) == 256


def decode_viscii(data: bytes) -> str:
    return unicodedata.normalize("NFC", codecs.charmap_decode(data, "strict", _VISCII_TABLE)[0])


_WORDS = re.compile(r"\w+")


def _capitals(word: str) -> int:
    """2: typed in capitals (two or more A-Z, no a-z); 1: could be (one A-Z, e.g. "Xã"); 0: not."""
    if any("a" <= c <= "z" for c in word):
        return 0
    count = sum(1 for c in word if "A" <= c <= "Z")
    return 2 if count >= 2 else count


_MIXED = re.compile(r"[A-Z]\w*[^\x00-\x7f]|[^\x00-\x7f]\w*[A-Z]")


def _restore_capitals(text: str) -> str:
    if not _MIXED.search(text):  # no word mixes A-Z with a Vietnamese letter: nothing to do
        return text
    words = list(_WORDS.finditer(text))
    kinds = [_capitals(m.group(0)) for m in words]
    out, pos = [], 0
    for index, match in enumerate(words):
        kind = kinds[index]
        near = (index and kinds[index - 1] == 2) or (index + 1 < len(kinds) and kinds[index + 1] == 2)
        out.append(text[pos:match.start()])
        out.append(match.group(0).upper() if kind == 2 or (kind == 1 and near) else match.group(0))
        pos = match.end()
    out.append(text[pos:])
    return "".join(out)


def decode_tcvn3(data: bytes) -> str:
    """TCVN3 → NFC. A word typed in capitals keeps VN3's small toned letters (``CộNG``: the
    upper-case font drew them as capitals), so such a word is upper-cased (``CỘNG``), and so
    is a one-capital word like ``Xã`` next to one."""
    text = unicodedata.normalize("NFC", codecs.charmap_decode(data, "strict", _TCVN3_TABLE)[0])
    return text if text.isascii() else _restore_capitals(text)


def decode_cp1258(data: bytes) -> str:
    return unicodedata.normalize("NFC", data.decode("cp1258", errors="replace"))


# VNI Windows: mark bytes (as cp1252 characters) → combining marks they add to the vowel before.
_ACUTE, _GRAVE, _HOOK, _TILDE, _DOT, _CIRC, _BREVE = "\u0301", "\u0300", "\u0309", "\u0303", "\u0323", "\u0302", "\u0306"
_VNI_MARKS = {
    "ù": _ACUTE, "ø": _GRAVE, "û": _HOOK, "õ": _TILDE, "ï": _DOT,
    "â": _CIRC, "á": _CIRC + _ACUTE, "à": _CIRC + _GRAVE, "å": _CIRC + _HOOK, "ã": _CIRC + _TILDE, "ä": _CIRC + _DOT,
    "ê": _BREVE, "é": _BREVE + _ACUTE, "è": _BREVE + _GRAVE, "ú": _BREVE + _HOOK, "ü": _BREVE + _TILDE, "ë": _BREVE + _DOT,
}
_VNI_MARKS.update({k.upper(): v for k, v in list(_VNI_MARKS.items())})
_VNI_LETTERS = {  # bytes that are whole letters in VNI
    "ô": "ơ", "ö": "ư", "ñ": "đ", "í": "í", "ì": "ì", "æ": "ỉ", "ó": "ĩ", "ò": "ị", "î": "ỵ",
}
_VNI_LETTERS.update({k.upper(): v.upper() for k, v in list(_VNI_LETTERS.items())})
_TONE_BASES = frozenset("aeiouyơưAEIOUYƠƯ")
_CIRC_BASES = frozenset("aeoAEO")
_BREVE_BASES = frozenset("aA")


def decode_vni(data: bytes) -> str:
    """VNI Windows → NFC. A mark byte combines only with the vowel it follows; elsewhere it is
    the Windows-1252 character it would show as."""
    chars = codecs.charmap_decode(data, "strict", _CP1252_TABLE)[0]
    out: list[str] = []
    base = ""  # the vowel marks may still attach to, "" when none
    has_shape = has_tone = False
    for ch in chars:
        mark = _VNI_MARKS.get(ch)
        if mark is not None and base:
            shape = mark[0] in (_CIRC, _BREVE)
            tone = len(mark) == 2 or not shape
            ok = not (shape and has_shape) and not (tone and has_tone) and not (shape and has_tone)
            if ok and shape and base not in (_BREVE_BASES if mark[0] == _BREVE else _CIRC_BASES):
                ok = False
            if ok:
                out.append(mark)
                has_shape, has_tone = has_shape or shape, has_tone or tone
                continue
        letter = _VNI_LETTERS.get(ch, ch)
        out.append(letter)
        base = letter if letter in _TONE_BASES else ""
        has_shape = has_tone = False
    return unicodedata.normalize("NFC", "".join(out))


_DECODERS = {"tcvn3": decode_tcvn3, "vni": decode_vni, "viscii": decode_viscii, "windows-1258": decode_cp1258}
_ALIASES = {
    "tcvn": "tcvn3", "tcvn3": "tcvn3", "tcvn-3": "tcvn3", "tcvn5712": "tcvn3", "tcvn-5712": "tcvn3",
    "tcvn5712-3": "tcvn3", "vn3": "tcvn3", "abc": "tcvn3", "x-viet-tcvn": "tcvn3", "x-viet-tcvn5712": "tcvn3",
    "vni": "vni", "vni-win": "vni", "vni-windows": "vni", "x-viet-vni": "vni",
    "viscii": "viscii", "viscii1.1-1": "viscii", "csviscii": "viscii", "x-viet-viscii": "viscii",
    "windows-1258": "windows-1258", "cp1258": "windows-1258", "x-cp1258": "windows-1258",
}


def vietnamese_charset(name: str | None) -> str | None:
    """Our canonical name for a legacy Vietnamese charset label, or None."""
    return _ALIASES.get((name or "").strip().lower())


def decode_legacy(data: bytes, charset: str) -> str:
    """Decode with one of the canonical names of ``vietnamese_charset``."""
    return _DECODERS[charset](data)


# -- detection ----------------------------------------------------------------------------------

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
    best, best_score = "windows-1252", _assess(_decode_cp1252(sample))[0]
    for name in ("tcvn3", "vni", "viscii", "windows-1258"):
        score, convincing = _assess(decode_legacy(sample, name))
        if convincing and score > best_score:
            best, best_score = name, score
    if best == "windows-1252":
        return unicodedata.normalize("NFC", _decode_cp1252(data)), best
    return decode_legacy(data, best), best


def _decode_cp1252(data: bytes) -> str:
    return codecs.charmap_decode(data, "strict", _CP1252_TABLE)[0]
