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

Recognising these when the label is missing or wrong is storage/mime/detect.py.
"""

from __future__ import annotations

import codecs
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


def decode_cp1252(data: bytes) -> str:
    """Windows-1252, with its five unassigned bytes kept as latin-1 (never fails)."""
    return codecs.charmap_decode(data, "strict", _CP1252_TABLE)[0]
