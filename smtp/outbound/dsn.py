"""Delivery status notifications (RFC 3464 multipart/report, RFC 3461 fields) for the sender.

Text for people in Vietnamese first, English below (R-TEXT-1: UTF-8, NFC); the machine-readable
part (message/delivery-status) and the original message's header (text/rfc822-headers) follow,
so mail clients show "undelivered" properly. Built as bytes, never re-serialised by a library.
The client's RFC 3461 parameters are honoured: ENVID → Original-Envelope-Id, ORCPT →
Original-Recipient, RET=FULL → the whole message (message/rfc822) in a failure report, headers only
otherwise; success reports ("delivered", "relayed", "expanded") only when NOTIFY asked for them
(smtp/dsn_params.wants decides which reports are owed).
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from dataclasses import dataclass
from email.header import Header
from email.utils import format_datetime
from typing import Sequence

from smtp.dsn_params import xtext_encode
from smtp.outbound import reasons

FAILED, DELAYED = "failed", "delayed"
DELIVERED, RELAYED, EXPANDED = "delivered", "relayed", "expanded"  # success reports (NOTIFY=SUCCESS)
SUCCESS_ACTIONS = (DELIVERED, RELAYED, EXPANDED)
#: RET=FULL returns the message up to this size; a larger one gets its header only (RFC 3461 4.3
#: lets the MTA truncate), so a report is never refused for size where the message was not.
FULL_RETURN_LIMIT = 10 * 1024 * 1024
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class RecipientReport:
    address: str
    action: str  # FAILED or DELAYED
    status: str  # RFC 3463 "5.1.1"
    diagnostic: str | None  # "550 5.1.1 no such user" (the remote's words), None if no reply
    remote: str | None
    last_attempt: _dt.datetime | None
    orcpt: str | None = None  # "rfc822;bob@example.org" as the client gave it (decoded)


def status_of(code: int | None, text: str | None, *, expired: bool = False) -> str:
    """The RFC 3463 status for a reply: its enhanced code when given, else from the class."""
    if expired:
        return "4.4.7"
    match = _ENHANCED.match(text or "")
    if match and code and str(code)[0] == match.group(1):
        return ".".join(match.groups())
    if code and 500 <= code < 600:
        return "5.0.0"
    return "4.0.0"


def _encode(text: str) -> str:
    return Header(text, "utf-8").encode() if not text.isascii() else text


def build_dsn(
    *,
    hostname: str,
    sender: str,
    action: str,
    reports: Sequence[RecipientReport],
    original_headers: bytes,
    arrival: _dt.datetime,
    retry_until: _dt.datetime | None = None,
    now: _dt.datetime | None = None,
    envid: str | None = None,
    full_message: bytes | None = None,
) -> bytes:
    """``full_message``: the message to return whole (RET=FULL, failures only); otherwise
    ``original_headers`` are returned (text/rfc822-headers)."""
    now = now or _dt.datetime.now(_dt.UTC)
    boundary = f"=_dsn_{uuid.uuid4().hex}"
    if action == FAILED:
        subject = "Thư không gửi được / Undelivered Mail Returned to Sender"
    elif action in SUCCESS_ACTIONS:
        subject = "Thư đã được chuyển tới người nhận / Successful Mail Delivery Report"
    else:
        subject = "Thư chưa gửi được, đang thử lại / Delayed Mail (still being retried)"
    lines = [
        f"From: {_encode('Hệ thống thư điện tử')} <MAILER-DAEMON@{hostname}>",
        f"To: <{sender}>",
        f"Subject: {_encode(subject)}",
        f"Date: {format_datetime(now)}",
        f"Message-ID: <{uuid.uuid4().hex}@{hostname}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated delivery status notification.",
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        *_human_text(hostname, action, reports, retry_until, original_headers),
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {hostname}",
        *([f"Original-Envelope-Id: {_printable(envid)}"] if envid else []),
        f"Arrival-Date: {format_datetime(arrival)}",
    ]
    for r in reports:
        lines.append("")
        if r.orcpt:
            kind, _, original = r.orcpt.partition(";")
            lines.append(f"Original-Recipient: {kind}; {_printable(original)}")
        lines += [f"Final-Recipient: {'utf-8' if not r.address.isascii() else 'rfc822'}; {r.address}",
                  f"Action: {r.action}", f"Status: {r.status}"]  # fmt: skip
        if (remote := reasons.remote_host(r.remote)) is not None:
            lines.append(f"Remote-MTA: dns; {remote}")
        if (quote := reasons.explain(r.status, r.diagnostic).quote) is not None:  # the remote's reply only
            lines.append(f"Diagnostic-Code: smtp; {quote}")
        if r.last_attempt:
            lines.append(f"Last-Attempt-Date: {format_datetime(r.last_attempt)}")
        if action == DELAYED and retry_until:
            lines.append(f"Will-Retry-Until: {format_datetime(retry_until)}")
    if full_message is not None and action == FAILED and len(full_message) <= FULL_RETURN_LIMIT:
        lines += ["", f"--{boundary}", "Content-Type: message/rfc822", ""]
        head = "\r\n".join(lines).encode("utf-8") + b"\r\n"
        body = full_message if full_message.endswith(b"\r\n") else full_message + b"\r\n"
        return head + body + f"\r\n--{boundary}--\r\n".encode()
    lines += ["", f"--{boundary}", "Content-Type: text/rfc822-headers", ""]
    head = "\r\n".join(lines).encode("utf-8") + b"\r\n"
    original = original_headers.rstrip(b"\r\n").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return head + original + b"\r\n\r\n" + f"--{boundary}--\r\n".encode()


def _printable(text: str) -> str:
    """A client's ENVID/ORCPT as a header value: xtext again for anything but printable ASCII."""
    return text if all(32 < ord(c) < 127 for c in text) else xtext_encode(text)


def _original(headers: bytes) -> tuple[str, str]:
    """(subject, date) of the original message, decoded for people; "" when absent."""
    from email.parser import BytesHeaderParser
    from email.policy import default

    try:
        msg = BytesHeaderParser(policy=default).parsebytes(headers + b"\r\n\r\n")
        return str(msg.get("Subject", "") or ""), str(msg.get("Date", "") or "")
    except Exception:  # noqa: BLE001 - a header we cannot read is left out, the notice still goes
        return "", ""


def _listing(reports: Sequence[RecipientReport], english: bool) -> list[str]:
    lines = []
    for r in reports:
        if r.action in SUCCESS_ACTIONS:  # a success report: nothing to explain
            lines.append(f"  <{r.address}>: {r.diagnostic or r.status}")
            continue
        reason = reasons.explain(r.status, r.diagnostic)
        lines.append(f"  <{r.address}>: {reason.en if english else reason.vi}")
        if reason.quote:
            lines.append(f"    {'The receiving server replied' if english else 'Máy chủ nhận trả lời'}: {reason.quote}")
    return lines


def _human_text(hostname: str, action: str, reports: Sequence[RecipientReport], until: _dt.datetime | None,
                original_headers: bytes = b"") -> list[str]:
    subject, date = _original(original_headers)
    about_vi = [f"Thư: \"{subject}\"" + (f", gửi lúc {date}" if date else "")] if subject or date else []
    about_en = [f"Message: \"{subject}\"" + (f", sent {date}" if date else "")] if subject or date else []
    when = until.astimezone(_dt.timezone(_dt.timedelta(hours=7))).strftime("%H:%M %d/%m/%Y (giờ Việt Nam)") if until else ""
    when_en = format_datetime(until) if until else ""
    if action in SUCCESS_ACTIONS:
        vi = [
            f"Đây là thông báo tự động của hệ thống thư điện tử {hostname}.",
            "Thư của bạn ĐÃ được chuyển tới (những) người nhận dưới đây (bạn đã yêu cầu thông báo này).",
            "Với thư chuyển tiếp sang máy chủ khác (relayed), máy chủ đó không gửi thông báo tiếp theo.",
        ]
        en = [
            f"This is an automatic message from the mail system at {hostname}.",
            "Your message WAS delivered to the recipient(s) below (you asked for this notice).",
            "Where it was relayed to a server that does not report delivery, no further notice follows.",
        ]
    elif action == FAILED:
        vi = [
            f"Đây là thông báo tự động của hệ thống thư điện tử {hostname}.",
            "Thư của bạn KHÔNG gửi được tới (những) người nhận dưới đây. Thư sẽ không được gửi lại;",
            "xin kiểm tra địa chỉ người nhận hoặc liên hệ quản trị hệ thống.",
        ]
        en = [
            f"This is an automatic message from the mail system at {hostname}.",
            "Your message could NOT be delivered to the recipient(s) below. It will not be retried;",
            "please check the address or contact the system administrator.",
        ]
    else:
        vi = [
            f"Đây là thông báo tự động của hệ thống thư điện tử {hostname}.",
            "Thư của bạn CHƯA gửi được tới (những) người nhận dưới đây. Hệ thống vẫn đang tự động",
            f"thử gửi lại đến {when}; bạn không cần gửi lại thư.",
        ]
        en = [
            f"This is an automatic message from the mail system at {hostname}.",
            "Your message has NOT yet been delivered to the recipient(s) below. The system keeps",
            f"trying until {when_en}; you do not need to send it again.",
        ]
    return (vi + [""] + about_vi + _listing(reports, False) + ["", "-" * 60, ""]
            + en + [""] + about_en + _listing(reports, True))


def header_block(message: bytes, limit: int = 64 * 1024) -> bytes:
    """The header section of ``message`` (up to the blank line), at most ``limit`` bytes."""
    head = message[:limit]
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = head.find(sep)
        if end >= 0:
            return head[:end]
    return head
