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

# Lead byte 0xCD also begins U+0340-037F: U+0345 (its case folding is Greek iota) and the Greek
# letters U+0370-037F are not plain marks to drop.
_NOT_ONLY_MARKS = re.compile(rb"\xcd[\x85\xb0-\xbf]")

# ASCII bytes: upper case to lower case, and every byte str.split() takes for whitespace to a space.
_ASCII_FOLD = bytes(
    c + 32 if 65 <= c <= 90 else 32 if c in b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f" else c for c in range(256)
)


def _ascii_folded(data: bytes) -> str:
    """ASCII ``data`` lower-cased, whitespace runs collapsed to one space, ends stripped: what
    ``" ".join(text.casefold().split())`` gives, in C passes without one object per word."""
    data = data.translate(_ASCII_FOLD)
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    return data.strip(b" ").decode("ascii")


def _without_marks(text: str) -> bytes | None:
    """``text`` (đ already replaced) in NFD without its combining marks, as ASCII bytes, when
    every non-ASCII character of the NFD form is a mark of U+0300-036F (Vietnamese and most Latin
    text); else None.

    Counting bytes is C-speed: in UTF-8 the lead bytes 0xCC and 0xCD begin exactly U+0300-037F,
    so when their number equals the number of non-ASCII characters, dropping every non-ASCII
    character drops just the marks.
    """
    nfd = unicodedata.normalize("NFD", text)
    kept = nfd.encode("ascii", "ignore")
    utf8 = nfd.encode("utf-8")
    if len(nfd) - len(kept) != utf8.count(b"\xcc") + utf8.count(b"\xcd") or _NOT_ONLY_MARKS.search(utf8):
        return None
    return kept


def fold(text: str, *, diacritics: bool = True) -> str:
    """NFC + casefold (+ tones and marks removed, đ→d when ``diacritics``), whitespace collapsed.

    ``diacritics=True`` is the search profile's ``fold_diacritics`` (R-TEXT-1): â ă ê ô ơ ư fold
    to a a e o o u and every tone mark is dropped; other scripts' marks are dropped too.
    Runs at every delivery over the whole body text and the header fields, so the common cases
    (ASCII, and Latin text whose NFD is ASCII plus marks) are C-level passes: NFD, two encodes,
    a byte table for case and whitespace. Other text takes the general path: casefold, NFD, one
    regular expression for the combining marks, NFC (tests/test_mime.py holds both to the
    definition).
    """
    if text.isascii():
        return _ascii_folded(text.encode("ascii"))
    if diacritics:
        text = text.replace("đ", "d").replace("Đ", "D").replace("\u00f0", "d").replace("\u00d0", "D")
        ascii_bytes = _without_marks(text)
        if ascii_bytes is not None:
            return _ascii_folded(ascii_bytes)
        text = unicodedata.normalize("NFD", text.casefold()).replace("đ", "d").replace("\u00f0", "d")
        text = _COMBINING.sub("", text)
        if not text.isascii():
            text = unicodedata.normalize("NFC", text)
    else:
        text = unicodedata.normalize("NFC", text.casefold())
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
