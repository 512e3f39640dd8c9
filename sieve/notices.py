"""Messages the filters send on a user's behalf or to the user: the refusal of a ``reject``
(RFC 5429 2.1, to the envelope sender) and the notice that a script failed (RFC 5228 2.10.6,
to the user). Vietnamese first, English below; all carry ``Auto-Submitted`` so that no vacation
reply or filter of ours answers them."""

from __future__ import annotations

import datetime as _dt
import unicodedata
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid


def _message(*, sender: str, to: str, subject: str, text: str, hostname: str, now: _dt.datetime,
             auto: str = "auto-replied") -> EmailMessage:  # fmt: skip
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = unicodedata.normalize("NFC", subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain=hostname)
    msg["Auto-Submitted"] = auto
    msg.set_content(unicodedata.normalize("NFC", text), charset="utf-8")
    return msg


def rejection(*, reason: str, recipient: str, sender: str, original_subject: str, message_id: str,
              hostname: str, now: _dt.datetime) -> bytes:  # fmt: skip
    """To ``sender``: ``recipient`` refused the message with ``reason`` (RFC 5429)."""
    text = (
        f"Thư của bạn gửi tới {recipient} (tiêu đề: {original_subject}) đã bị người nhận từ chối.\n"
        f"Lý do: {reason}\n\n"
        f"Your message to {recipient} (subject: {original_subject}) was refused by the recipient.\n"
        f"Reason: {reason}\n"
    )
    msg = _message(sender=f"MAILER-DAEMON@{hostname}", to=sender, subject=f"Thư bị từ chối / Message refused: {original_subject}",
                   text=text, hostname=hostname, now=now)  # fmt: skip
    if message_id:
        msg["In-Reply-To"] = message_id
    return bytes(msg)


def script_failed(*, user: str, script: str, error: str, hostname: str, now: _dt.datetime) -> bytes:
    """To ``user``: the active filter ``script`` failed; the message went to INBOX."""
    text = (
        f"Bộ lọc thư \"{script}\" của bạn bị lỗi khi xử lý một thư đến, nên thư đó đã được đưa vào "
        f"Hộp thư đến (INBOX). Hãy sửa bộ lọc trong chương trình thư (Thunderbird, Roundcube) hoặc "
        f"trên cổng thông tin.\nLỗi: {error}\n\n"
        f"Your mail filter \"{script}\" failed on an incoming message, so it was delivered to your "
        f"INBOX. Please correct the filter in your mail program or on the portal.\nError: {error}\n"
    )
    return bytes(_message(sender=f"MAILER-DAEMON@{hostname}", to=user,
                          subject="Bộ lọc thư bị lỗi / Your mail filter failed", text=text, hostname=hostname,
                          now=now, auto="auto-generated"))  # fmt: skip
