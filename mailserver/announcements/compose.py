"""The announcement message (pure): the operator's text (Vietnamese, then English) from the
agency's name at the postmaster address, to no one by name (``undisclosed-recipients:;``) so one
stored body serves every mailbox."""

from __future__ import annotations

import datetime as dt
import unicodedata
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid

FOOTER = ("\n\n-- \nThông báo của bộ phận vận hành hệ thống thư điện tử; xin không trả lời thư này.\n"
          "A notice from the mail system's operators; please do not reply to this message.\n")


def compose(subject: str, body: str, *, sender: str, sender_name: str, when: dt.datetime) -> bytes:
    """RFC 5322 bytes (CRLF), UTF-8 text in quoted-printable, headers RFC 2047-encoded."""
    subject, body = (unicodedata.normalize("NFC", t) for t in (subject.strip(), body.rstrip()))
    if not subject or "\n" in subject or "\r" in subject:
        raise ValueError("the subject is one non-empty line")
    if not body:
        raise ValueError("the body is empty")
    msg = EmailMessage(policy=SMTP)
    msg["From"] = formataddr((sender_name, sender))
    msg["To"] = "undisclosed-recipients:;"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_msgid("announce", domain=sender.rpartition("@")[2])
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: vacation replies stay quiet
    msg["Precedence"] = "bulk"
    msg.set_content(body + FOOTER, charset="utf-8", cte="quoted-printable")
    return msg.as_bytes()
