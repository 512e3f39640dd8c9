"""Settings of the classified-document guard of submission (R-SEC-3, smtp/classified/).

State secrets carry a stamp ("Tuyệt mật", "Tối mật", "Mật"; Law on Protection of State Secrets
2018, Decree 26/2020) and must not be sent by e-mail. ``action`` says what a stamped message
gets: ``refuse`` (550 5.7.1 naming the marking and the part) or ``hold`` (kept in the review
queue until an operator releases or deletes it: ``mailserver queue held|release|delete``).
``unreadable`` does the same for a document the guard cannot read (an encrypted PDF, a
password-protected ZIP, a broken file, a time-out): ``hold`` by default, ``accept`` delivers it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from config.sizes import parse_size

DEFAULT_MARKINGS = ("Tuyệt mật", "Tối mật", "Mật")
DEFAULT_LABELS = ("Độ mật",)

Size = Annotated[int, BeforeValidator(lambda v: parse_size(v) if isinstance(v, str) else v), Field(ge=1)]


def _nfc(values: tuple[str, ...]) -> tuple[str, ...]:
    out = tuple(unicodedata.normalize("NFC", v).strip() for v in values)
    if any(not v for v in out):
        raise ValueError("an empty marking or label")
    return out


def _regexes(values: tuple[str, ...]) -> tuple[str, ...]:
    for v in values:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"not a regular expression: {v!r} ({e})") from None
    return values


class Classified(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    action: Literal["refuse", "hold"] = "refuse"
    unreadable: Literal["hold", "refuse", "accept"] = "hold"
    # the stamps, as written on documents; matched with their diacritics, or folded where the
    # text has none, in any case (mailserver/policy/classified.py)
    markings: Annotated[tuple[str, ...], AfterValidator(_nfc), Field(min_length=1)] = DEFAULT_MARKINGS
    # "Độ mật: Mật" on a form line
    labels: Annotated[tuple[str, ...], AfterValidator(_nfc)] = DEFAULT_LABELS
    # more stamps: regular expressions searched in each folded line (lower case, no diacritics)
    patterns: Annotated[tuple[str, ...], AfterValidator(_regexes)] = ()
    # tell the sender's unit (its mailbox and head) of every refused or held message
    notify_unit: bool = True
    workers: int = Field(default=2, ge=1, le=64)  # extraction processes
    timeout: float = Field(default=20.0, gt=0)  # seconds per message, then `unreadable`
    memory: Size = 1024**3  # address space of one extraction process (RLIMIT_AS)
    max_unpacked: Size = 200 * 1024**2  # bytes unpacked from ZIP archives per message
