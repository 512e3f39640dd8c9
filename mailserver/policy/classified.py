"""Classification stamps of state secrets in text (R-SEC-3), pure.

A classified document carries a stamp — "Tuyệt mật", "Tối mật" or "Mật" (Law on Protection of
State Secrets 2018, Decree 26/2020) — as a box or a line of its own in the header area, often
as "Độ mật: Mật", and often in the subject ("[MẬT] Kế hoạch ..."). The same words occur in
ordinary prose ("bí mật thư tín", "mật khẩu"), which must pass; so a marking counts only as a
stamp:

- a line whose whole text (box drawing, brackets, asterisks and quotes aside) is a marking;
- a label ("Độ mật") followed by ``:`` or ``-`` and a marking;
- in a subject: a marking in brackets anywhere, or at the start followed by a separator.

Text written with diacritics must match with them (so "Mất" or "Mặt" alone on a line is not
"Mật"); text written without any (ASCII only, as in "TOI MAT") matches the folded marking. Case
never matters. Longest markings first, so "Tuyệt mật" is reported rather than "Mật".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

from config.classified import DEFAULT_LABELS, DEFAULT_MARKINGS


#: What surrounds a stamp on its line: box drawing, brackets, quotes, asterisks, dashes, bars.
_FRAME = "".join(map(chr, range(0x2500, 0x25A0))) + "[](){}<>«»\"'“”‘’*_=|#~.:;!–—-"
#: Reply and forward prefixes of a subject (English and Vietnamese clients).
_PREFIX = re.compile(r"^(?:(?:re|fwd?|tl|tr|tra loi|chuyen tiep|trả lời|chuyển tiếp)\s*:\s*)+")
_SPACE = re.compile(r"\s+")
_SEP = r"\s*(?:[:|\-–—/]|$)"


def fold(text: str) -> str:
    """NFC, case-folded, Vietnamese tones and marks removed, đ → d."""
    decomposed = unicodedata.normalize("NFD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("đ", "d")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text).casefold()).strip()


@dataclass(frozen=True, slots=True)
class Finding:
    """A stamp found: the marking as configured, and the line it was on (for the audit)."""

    marking: str
    line: str


class Detector:
    """Built once from the configured markings, labels and extra regular expressions (searched
    in folded text, a line at a time); ``find`` is thread- and process-safe.

    Matching is done on the text as written (NFC, case-folded): each marking and label is
    looked for with its diacritics and in its ASCII folded form, so an ASCII form matches only
    where the text itself has no diacritics there."""

    def __init__(self, markings: Sequence[str] = DEFAULT_MARKINGS, labels: Sequence[str] = DEFAULT_LABELS,
                 patterns: Sequence[str] = ()) -> None:
        if not markings:
            raise ValueError("at least one marking is needed")
        self.markings = tuple(sorted(markings, key=len, reverse=True))
        self.forms = {}
        for m in self.markings:
            self.forms.setdefault(_norm(m), m)
            self.forms.setdefault(fold(_norm(m)), m)
        self.patterns = tuple(re.compile(p) for p in patterns)
        marks = _alternatives(self.forms)
        labels = _alternatives({f for x in labels for f in (_norm(x), fold(_norm(x)))})
        self._label = re.compile(r"^(?:" + labels + r")\s*[:\-–—]\s*[" + re.escape(_FRAME) + r"\s]*(" + marks + r")(?!\w)")
        self._bracketed = re.compile(r"[\[(【{<«]\s*(" + marks + r")\s*[\])】}>»]")
        self._leading = re.compile(r"^(" + marks + r")" + _SEP)

    def marking_of(self, text: str) -> str | None:
        """The configured marking ``text`` is, frame characters around it aside, else None."""
        return self.forms.get(_norm(text).strip(_FRAME + " "))

    def find_in_line(self, line: str) -> str | None:
        text = _norm(line)
        if not text:
            return None
        found = self.marking_of(text)
        if found is not None:
            return found
        m = self._label.match(text.strip(_FRAME + " "))
        if m is not None:
            return self.forms[m.group(1)]
        if self.patterns:
            folded = fold(text)
            for pattern in self.patterns:
                if pattern.search(folded):
                    return pattern.pattern
        return None

    def find(self, text: str) -> Finding | None:
        """The first stamp in a body or document text, else None."""
        for line in text.splitlines():
            hit = self.find_in_line(line)
            if hit is not None:
                return Finding(hit, line.strip()[:200])
        return None

    def find_in_subject(self, subject: str) -> Finding | None:
        """A subject is one line of running text: a bracketed marking anywhere, or a marking
        at its start followed by a separator ("MẬT - Báo cáo", "Tối mật: ...") is a stamp."""
        hit = self.find_in_line(subject)
        if hit is None:
            text = _norm(subject)
            bare = _PREFIX.sub("", text)
            m = self._bracketed.search(text) or self._leading.match(bare.lstrip(_FRAME + " "))
            hit = self.forms[m.group(1)] if m is not None else None
        return Finding(hit, subject.strip()[:200]) if hit is not None else None


def _alternatives(forms: Iterable[str]) -> str:
    return "|".join(re.escape(f).replace("\\ ", r"\s+") for f in sorted(set(forms), key=len, reverse=True))


def first_finding(detector: Detector, parts: Iterable[tuple[str, str, bool]]) -> tuple[str, Finding] | None:
    """(part name, finding) of the first stamped part; ``parts`` are (name, text, is_subject)."""
    for name, text, is_subject in parts:
        found = detector.find_in_subject(text) if is_subject else detector.find(text)
        if found is not None:
            return name, found
    return None
