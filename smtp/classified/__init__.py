"""The classified-document guard of submission (R-SEC-3): state secrets are not sent by e-mail.

At the end of DATA on submission (587, 465) the check ``classified`` hands the message to the
extraction processes (smtp/classified/worker.py), which read the subject, the text bodies and
the text of attached documents (smtp/classified/extract.py) and look for a classification stamp
(mailserver/policy/classified.py). A stamped message is refused (``550 5.7.1``, Vietnamese then
English, naming the marking and the part) or held for an operator (``mailserver queue held``),
per ``classified.action``; a document that cannot be read follows ``classified.unreadable``.
Either way the attempt is audited and the sender's unit is told (``Reports``, injected by the
composition root: mailserver/mailboxes/classified.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from config.classified import Classified
from mailserver.policy.classified import fold
from smtp.classified.worker import Outcome, Scanner

log = logging.getLogger("smtp.classified")


class Reports(Protocol):
    """Audit and notices of a refused or held message; blocking (called in a worker thread)."""

    def report(self, *, account_id: int | None, actor_id: int | None, sender: str, outcome: Outcome, action: str,
               tx_id: str, held_id: int | None = None) -> None: ...


@dataclass
class Guard:
    cfg: Classified
    scanner: Scanner
    reports: Reports | None = None
    warming: Any = None  # the start-up task of the extraction processes

    @classmethod
    def from_settings(cls, cfg: Classified, reports: Any = None) -> "Guard | None":
        return cls(cfg, Scanner(cfg), reports) if cfg.enabled else None

    def action_for(self, outcome: Outcome) -> str:
        """refuse | hold | accept for an outcome that is not clean."""
        return self.cfg.action if outcome.verdict == "stamped" else self.cfg.unreadable


def refusal(outcome: Outcome, utf8: bool) -> str:
    """``550 5.7.1`` in Vietnamese then English, naming the marking (or what could not be read)
    and the part. Without SMTPUTF8 the reply is ASCII: the Vietnamese without diacritics."""
    part = outcome.part or "thư / message"
    if outcome.verdict == "stamped":
        vi = f"Thư bị từ chối: có dấu độ mật \"{outcome.marking}\" trong {part}; không gửi tài liệu mật qua thư điện tử"
        en = (f"Message refused: classification marking \"{outcome.marking}\" found in {part}; "
              "classified documents must not be sent by e-mail (R-SEC-3)")
    else:
        vi = f"Thư bị từ chối: không đọc được {part} để kiểm tra độ mật ({outcome.detail})"
        en = f"Message refused: {part} could not be checked for a classification marking ({outcome.detail})"
    if not utf8:
        vi = _ascii(vi)
        en = _ascii(en)
    return f"550-5.7.1 {vi}\r\n550 5.7.1 {en}"


def held_reply(held_id: int, utf8: bool) -> str:
    vi = f"Thư được giữ lại chờ kiểm tra độ mật (số {held_id}), chưa được gửi đi"
    en = f"Message held for a classification review (number {held_id}); not delivered yet"
    return f"250-2.6.0 {vi if utf8 else _ascii(vi)}\r\n250 2.6.0 {en if utf8 else _ascii(en)}"


def _ascii(text: str) -> str:
    """Vietnamese without its marks (``fold`` keeps case out, so fold per character)."""
    out = []
    for c in text.replace("“", '"').replace("”", '"').replace("›", ">"):
        if c.isascii():
            out.append(c)
            continue
        f = fold(c)
        f = f.upper() if c.isupper() else f
        out.append(f if f.isascii() else "?")
    return "".join(out)
