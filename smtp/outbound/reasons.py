"""Why a message was not delivered, in words a mail user reads (delivery notices, RFC 3464):
Vietnamese first, English below, by class of failure — never a raw exception or the address
of an internal relay. The receiving server's own reply is quoted only when it came from that
server (a reply with its code); a failure of ours to reach it is told as that."""

from __future__ import annotations

import re
from dataclasses import dataclass

_REPLY = re.compile(r"^[245]\d\d[ -]")
_HOST = re.compile(r"^(?P<host>[^\[\]:\s]+)\[")

#: (status prefix, Vietnamese, English); the first prefix that matches the RFC 3463 status wins.
CLASSES: tuple[tuple[str, str, str], ...] = (
    ("4.4.7", "hệ thống đã thử gửi nhiều lần trong thời hạn cho phép nhưng không thành công",
     "the system kept trying for the allowed time without success"),
    ("5.1.1", "địa chỉ người nhận không tồn tại", "the address does not exist"),
    ("5.1.2", "tên miền của người nhận không tồn tại hoặc không nhận thư",
     "the recipient's domain does not exist or does not accept mail"),
    ("5.1.10", "tên miền của người nhận không nhận thư", "the recipient's domain accepts no mail"),
    ("5.1", "địa chỉ người nhận không hợp lệ", "the recipient's address is not valid"),
    ("5.2.1", "hộp thư người nhận đã bị khoá hoặc thu hồi", "the recipient's mailbox is disabled"),
    (".2.2", "hộp thư người nhận đã đầy", "the receiving mailbox is full"),
    (".3.4", "thư quá lớn so với giới hạn của máy chủ nhận", "the message is larger than the receiving server accepts"),
    (".2.3", "thư quá lớn so với giới hạn của máy chủ nhận", "the message is larger than the receiving server accepts"),
    ("5.7", "máy chủ nhận từ chối thư (bị coi là thư rác hoặc trái chính sách của máy chủ đó)",
     "the receiving server refused it (as spam, or against its policy)"),
    ("5.6", "máy chủ nhận không xử lý được định dạng của thư", "the receiving server cannot handle the message's format"),
    ("4.4", "không kết nối được tới máy chủ nhận thư", "the receiving server could not be reached"),
    ("4.7", "máy chủ nhận tạm thời từ chối thư", "the receiving server refused it for now"),
)


@dataclass(frozen=True, slots=True)
class Reason:
    vi: str
    en: str
    quote: str | None  # the receiving server's own reply, when it gave one


def explain(status: str, diagnostic: str | None) -> Reason:
    """The reason for one recipient from its RFC 3463 ``status`` and the diagnostic recorded."""
    quote = " ".join(diagnostic.split()) if diagnostic and _REPLY.match(diagnostic) else None
    if quote is None and status == "4.4.7":
        return Reason("không kết nối được tới máy chủ nhận thư, dù hệ thống đã thử lại nhiều lần trong thời hạn cho phép",
                      "the receiving server could not be reached, though the system kept trying for the allowed time", None)
    if quote is None and status.startswith("4.0"):
        status = "4.4.1"  # no reply from the remote: we could not reach it
    for prefix, vi, en in CLASSES:
        if (status.startswith(prefix) or (prefix.startswith(".") and status[1:].startswith(prefix))):
            return Reason(vi, en, quote)
    if quote is None:
        return Reason("không kết nối được tới máy chủ nhận thư", "the receiving server could not be reached", None)
    return Reason("máy chủ nhận từ chối thư", "the receiving server refused it", quote)


def remote_host(remote: str | None) -> str | None:
    """The receiving server's host name for ``Remote-MTA`` (RFC 3464: a name, ``dns;``), from
    ``mx.other.gov.vn[10.0.0.5]:25``; None for a bare address (an internal relay stays unnamed)."""
    if not remote:
        return None
    match = _HOST.match(remote)
    return match.group("host") if match else None
