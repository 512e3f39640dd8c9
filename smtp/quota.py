"""Quota on the SMTP path (R-QUOTA-1): what the front end needs from the quota service,
and the bilingual replies it gives.

``start_smtp(..., quota=...)`` receives ``mailserver.mailboxes.quota.QuotaService`` from the
composition root (smtp/ may not import mailserver.*); anything with these methods fits. Every
method but ``smtp_size`` may read the database: call them off the event loop (``ctx.call``).

Where the limits bite:
- EHLO ``SIZE`` = ``smtp_size()`` (the attachment limit in base64 plus room for the letter),
  capped by ``limits.max_message_size``; ``MAIL FROM ... SIZE=`` above it → ``552 5.3.4``.
- RCPT: a mailbox that is full, or cannot take the declared size → ``452 4.2.2`` for that
  recipient only (``552 5.2.2`` when the message could not fit even in the empty mailbox).
- After DATA: the decoded attachment bytes, measured on the one parse of the message (kept for
  storing it), against each recipient's attachment limit → ``552 5.3.4`` naming the limit and the
  measured size.
- The commit checks the mailbox limit again (``DeliveryTarget.quota_limit``); a recipient that
  filled up meanwhile gets a DSN to the sender while the others get the message.

Reply texts are Vietnamese, then English (R-TEXT-1), one line each (RFC 2034: every line of a
multi-line reply carries the enhanced code). Vietnamese goes out with its diacritics only when the
client used SMTPUTF8 (RFC 6531 3.7.4); otherwise without them, in ASCII, as usual in Vietnam when
a channel cannot carry them.
"""

from __future__ import annotations

import unicodedata
from typing import Protocol

from quota import AttachmentMeasure, Decision, format_size
from storage.api import Account


class QuotaPolicy(Protocol):
    def smtp_size(self) -> int: ...
    def check_delivery(self, account: Account, size: int, count: int = 1) -> Decision: ...
    def check_delivery_now(self, account: Account, size: int) -> Decision | None:
        """``check_delivery`` when it needs no database, else None (then call that in a thread)."""
    def check_attachments(self, account: Account, total_decoded: int) -> Decision: ...
    def measure_attachments(self, structure: dict) -> AttachmentMeasure:
        """Of a part tree from ``store.messages.parse_message(..., measure=True)``; CPU only."""
    def delivery_limit(self, account: Account) -> int | None: ...
    def limits_need_store(self) -> bool:
        """Whether ``delivery_limit`` and ``check_delivery`` read the database (then: in a thread)."""


def ascii_vi(text: str) -> str:
    """Vietnamese without diacritics ("Hộp thư đầy" → "Hop thu day"), for ASCII-only channels."""
    text = text.replace("đ", "d").replace("Đ", "D")
    stripped = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return stripped.encode("ascii", "replace").decode("ascii")


def bilingual(code: str, enhanced: str, vi: str, en: str, *, utf8: bool) -> str:
    """A two-line reply: Vietnamese, then English, both with the same codes."""
    vi = unicodedata.normalize("NFC", vi) if utf8 else ascii_vi(vi)
    return f"{code}-{enhanced} {vi}\r\n{code} {enhanced} {en}"


def _bytes(n: int) -> str:
    return f"{format_size(n)} ({n} bytes)"


def rcpt_refused(decision: Decision, address: str, *, utf8: bool) -> str:
    """RCPT: 452 4.2.2 (full now, may fit later) or 552 5.2.2 (never fits this mailbox)."""
    code, enhanced = ("552", "5.2.2") if decision.permanent else ("452", "4.2.2")
    if decision.resource == "messages":
        vi = f"Hộp thư <{address}> đã đạt số thư tối đa ({decision.limit}), xin gửi lại sau."
        en = f"Mailbox <{address}> holds its maximum number of messages ({decision.limit}), try again later."
    elif decision.permanent:
        vi = f"Thư ({_bytes(decision.requested)}) lớn hơn dung lượng hộp thư <{address}> ({_bytes(decision.limit or 0)})."
        en = f"The message ({_bytes(decision.requested)}) is larger than mailbox <{address}> ({_bytes(decision.limit or 0)})."
    else:
        vi = f"Hộp thư <{address}> đã đầy (đã dùng {format_size(decision.used)} trên {format_size(decision.limit or 0)}), xin gửi lại sau."
        en = f"Mailbox <{address}> is full ({format_size(decision.used)} of {format_size(decision.limit or 0)} used), try again later."
    return bilingual(code, enhanced, vi, en, utf8=utf8)


def attachments_refused(decision: Decision, *, utf8: bool) -> str:
    """After DATA: 552 5.3.4 naming the limit and the measured (decoded) size."""
    vi = (f"Tổng dung lượng tập tin đính kèm {_bytes(decision.requested)} vượt quá giới hạn "
          f"{_bytes(decision.limit or 0)} cho mỗi thư.")  # fmt: skip
    en = (f"The attachments total {_bytes(decision.requested)}, over the limit of "
          f"{_bytes(decision.limit or 0)} per message.")  # fmt: skip
    return bilingual("552", "5.3.4", vi, en, utf8=utf8)


def dsn_diagnostic(decision: Decision | None) -> str:
    """Diagnostic-Code text (ASCII, RFC 3464) for a recipient refused after the 250."""
    if decision is None or decision.ok:
        return "552 5.2.2 Mailbox full (quota exceeded while the message was being delivered)"
    if decision.resource == "attachments":
        return (f"552 5.3.4 Attachments total {_bytes(decision.requested)}, over this recipient's "
                f"limit of {_bytes(decision.limit or 0)} per message")  # fmt: skip
    return f"552 5.2.2 Mailbox full ({format_size(decision.used)} of {format_size(decision.limit or 0)} used)"
