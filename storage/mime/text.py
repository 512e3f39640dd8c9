"""Text normalisation for search: folding and HTML to text (R-TEXT-1).

``fold`` is what the store applies to both the indexed text and the query, so "cong van so 12"
finds "Công văn số 12" and "Đ" matches "D". It is deterministic and locale-free (casefold, not
lower), so the index never depends on the server's locale.
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_SPACE = re.compile(r"\s+")


def _vietnamese_table() -> dict[int, str]:
    """Precomposed Vietnamese letter → base letter, so the common case needs no NFD pass."""
    table: dict[int, str] = {ord("đ"): "d", ord("Đ"): "D"}
    for cp in list(range(0xC0, 0x250)) + list(range(0x1EA0, 0x1F00)):
        ch = chr(cp)
        base = _COMBINING.sub("", unicodedata.normalize("NFD", ch))
        if base != ch and len(base) == 1:
            table[cp] = base
    return table


_STRIP_MARKS = _vietnamese_table()


def fold(text: str, *, diacritics: bool = True) -> str:
    """NFC + casefold (+ tones and marks removed, đ→d when ``diacritics``), whitespace collapsed.

    ``diacritics=True`` is the search profile's ``fold_diacritics`` (R-TEXT-1): â ă ê ô ơ ư fold
    to a a e o o u and every tone mark is dropped; other scripts' marks are dropped too.
    """
    text = unicodedata.normalize("NFC", text).casefold()
    if diacritics:
        text = text.translate(_STRIP_MARKS)
        if not text.isascii():
            text = unicodedata.normalize("NFC", _COMBINING.sub("", unicodedata.normalize("NFD", text)))
    return _SPACE.sub(" ", text).strip()


_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt fieldset figcaption figure footer form h1 h2 h3 "
    "h4 h5 h6 header hr li main nav ol p pre section table td th tr ul title".split()
)
_SKIP_TAGS = frozenset({"script", "style", "head", "template", "noscript"})


class _TextExtractor(HTMLParser):
    """Collects character data outside script/style; block elements become line breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


_TAG_FALLBACK = re.compile(r"<[^>]*>")


def html_to_text(markup: str) -> str:
    """Visible text of an HTML part: tags, scripts and styles removed, entities unescaped, NFC.

    Never raises: on markup the parser rejects, tags are stripped by a regular expression.
    """
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
        text = "".join(parser.out)
    except Exception:  # noqa: BLE001 - hostile markup must degrade, not fail a delivery
        text = html.unescape(_TAG_FALLBACK.sub(" ", markup))
    lines = (_SPACE.sub(" ", line).strip() for line in text.splitlines())
    return unicodedata.normalize("NFC", "\n".join(line for line in lines if line))
