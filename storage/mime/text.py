"""Text normalisation for search: folding and HTML to text (R-TEXT-1).

``fold`` is what the store applies to both the indexed text and the query, so "cong van so 12"
finds "Công văn số 12" and "Đ" matches "D". It is deterministic and locale-free (casefold, not
lower), so the index never depends on the server's locale.
"""

from __future__ import annotations

import html
import re
import unicodedata

_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_SPACE = re.compile(r"\s+")


def _vietnamese_table() -> dict[int, str]:
    """Precomposed Vietnamese letter → base letter, so the common case needs no NFD pass."""
    # Đ/đ, and Ð/ð (U+00D0/F0) that old converters and fonts put in its place.
    table: dict[int, str] = {ord("đ"): "d", ord("Đ"): "D", 0xD0: "D", 0xF0: "d"}
    for cp in list(range(0xC0, 0x250)) + list(range(0x1EA0, 0x1F00)):
        ch = chr(cp)
        base = _COMBINING.sub("", unicodedata.normalize("NFD", ch))
        if base != ch and len(base) == 1:
            table[cp] = base
    return table


_STRIP_MARKS = _vietnamese_table()


_GREEK_IN_CD = re.compile(rb"\xcd[\xb0-\xbf]")  # U+0370-037F share the lead byte of U+0340-036F


def _only_marks_removed(nfd: str) -> str | None:
    """``nfd`` without its combining marks when every non-ASCII character of it is a mark of
    U+0300-036F (Vietnamese and other Latin text once đ is replaced), else None.

    Counting bytes is C-speed: in UTF-8 the lead bytes 0xCC and 0xCD begin exactly U+0300-037F,
    so when their number equals the number of non-ASCII characters, dropping every non-ASCII
    character drops just the marks. Five times cheaper than the regular expression on a 10 KB
    Vietnamese body, which every delivery folds.
    """
    kept = nfd.encode("ascii", "ignore")
    utf8 = nfd.encode("utf-8")
    if len(nfd) - len(kept) != utf8.count(b"\xcc") + utf8.count(b"\xcd") or _GREEK_IN_CD.search(utf8):
        return None
    return kept.decode("ascii")


def fold(text: str, *, diacritics: bool = True) -> str:
    """NFC + casefold (+ tones and marks removed, đ→d when ``diacritics``), whitespace collapsed.

    ``diacritics=True`` is the search profile's ``fold_diacritics`` (R-TEXT-1): â ă ê ô ơ ư fold
    to a a e o o u and every tone mark is dropped; other scripts' marks are dropped too.
    Runs at every delivery over the whole body text, so it sticks to C-level passes: NFD, one
    regular expression for the combining marks, and split/join for whitespace (about twice as
    fast as a per-character translate table on Vietnamese text).
    """
    text = text.casefold()
    if diacritics:
        if not text.isascii():
            text = unicodedata.normalize("NFD", text).replace("đ", "d").replace("\u00f0", "d")
            ascii_text = _only_marks_removed(text)
            if ascii_text is not None:
                return " ".join(ascii_text.split())
            text = _COMBINING.sub("", text)
            if not text.isascii():
                text = unicodedata.normalize("NFC", text)
    elif not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


_BLOCK_TAGS = (
    "address|article|aside|blockquote|br|dd|div|dl|dt|fieldset|figcaption|figure|footer|form|h[1-6]|"
    "header|hr|li|main|nav|ol|p|pre|section|table|td|th|tr|ul|title"
)
_HIDDEN = re.compile(r"<(script|style|head|template|noscript)\b[^>]*>.*?(?:</\1\s*>|\Z)", re.S | re.I)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_BLOCK = re.compile(rf"</?(?:{_BLOCK_TAGS})\b[^>]*>", re.I)
_TAG = re.compile(r"</?[A-Za-z!?][^>]*>")
_BLANKS = re.compile(r"[ \t\r\f\v\u00a0]+")


def html_to_text(markup: str) -> str:
    """Visible text of an HTML part for search: scripts, styles and tags removed, block elements
    as line breaks, entities unescaped, NFC.

    Regular expressions rather than an HTML parser: the pure-Python parser takes seconds on a
    few megabytes of mail HTML, and search text does not need a DOM. Never raises.
    """
    text = _COMMENT.sub(" ", markup)
    text = _HIDDEN.sub(" ", text)
    text = _BLOCK.sub("\n", text)
    text = html.unescape(_TAG.sub("", text))
    lines = (_BLANKS.sub(" ", line).strip() for line in text.split("\n"))
    return unicodedata.normalize("NFC", "\n".join(line for line in lines if line))
