"""Messages the server writes to its own users (quota warnings; account lifecycle changes,
R-LIFE-3), as RFC 5322 bytes.

Text: Vietnamese first, English below (R-TEXT-1), from ``quota.notices``. Headers in RFC 2047
encoded-words (``storage.mime.encode_header``) so any client shows the Vietnamese subject; the
body is UTF-8 in base64, safe through any hop. ``Auto-Submitted: auto-generated`` (RFC 3834) so
vacation responders and list software do not answer it.
"""

from __future__ import annotations

import base64
import datetime as _dt
import email.utils
import uuid

import logging

from quota.notices import quota_warning
from storage.mime.encode import encode_address, encode_header

log = logging.getLogger(__name__)

SENDER_NAME = "Hệ thống thư điện tử"  # "Mail system"


def postmaster(domains: tuple[str, ...] | list[str]) -> str:
    return f"postmaster@{domains[0]}"


def build_message(
    *,
    sender: str,
    to: str,
    to_name: str | None,
    subject: str,
    body: str,
    hostname: str,
    now: _dt.datetime | None = None,
    kind: str = "quota",
) -> bytes:
    """A text/plain UTF-8 message from ``sender`` (shown as the mail system) to ``to``."""
    now = now or _dt.datetime.now(_dt.UTC)
    text = body.replace("\r\n", "\n").replace("\n", "\r\n")
    encoded = base64.encodebytes(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    headers = [
        ("From", _address(SENDER_NAME, sender)),
        ("To", _address(to_name, to)),
        ("Subject", encode_header(subject)),
        ("Date", email.utils.format_datetime(now)),
        ("Message-ID", f"<{uuid.uuid4().hex}.{kind}@{hostname}>"),
        ("Auto-Submitted", "auto-generated"),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "base64"),
    ]
    head = "".join(_field(name, value) for name, value in headers)
    return (head + "\r\n" + encoded).encode("ascii")


def deliver_notice(store, settings, readers, *, subject: str, body: str, kind: str, about: str) -> int:
    """One notice per reader, straight into INBOX without a quota check (a notice must arrive);
    a delivery that fails is logged. Returns how many got it."""
    from storage.api import DeliveryTarget

    told = 0
    for person in readers:
        raw = build_message(sender=postmaster(settings.domains), to=person.address, to_name=person.display_name,
                            subject=subject, body=body, hostname=settings.hostname,
                            now=_dt.datetime.now(_dt.UTC), kind=kind)
        outcome = store.messages.deliver(store.messages.put_blob(raw),
                                         [DeliveryTarget(person.id, "INBOX", quota_limit=None)])[0]
        if outcome.ok:
            told += 1
        else:
            log.warning("%s notice about %s to %s not delivered: %s", kind, about, person.address, outcome.error)
    return told


def _address(name: str | None, address: str) -> str:
    """``encode_address``, with a non-ASCII name as folded encoded-words (lines of at most 76
    characters, RFC 2047 section 2) and the address on a line of its own."""
    if not name or name.isascii():
        return encode_address(name, address)
    return f"{encode_header(name)}\r\n <{address}>"


def _field(name: str, value: str) -> str:
    # Never folded right after the colon: parsers then keep a leading space in the value.
    return f"{name}: {value}\r\n"


def quota_notice(
    *,
    threshold: int,
    used: int,
    limit: int,
    mailbox: str,
    to: str,
    to_name: str | None,
    domains: tuple[str, ...] | list[str],
    hostname: str,
    now: _dt.datetime | None = None,
) -> bytes:
    """The warning that ``mailbox`` crossed ``threshold`` % of ``limit``, addressed to ``to``
    (the owner, or for a unit mailbox its head or a delegate: the text names the mailbox)."""
    notice = quota_warning(threshold, used, limit, mailbox)
    return build_message(
        sender=postmaster(domains), to=to, to_name=to_name, subject=notice.subject, body=notice.body,
        hostname=hostname, now=now,
    )


# -- account lifecycle (R-LIFE-3: "the operator notifies the unit by mail of every such change") --

_STATE_TEXT = {  # state: (Vietnamese, English, what it means in Vietnamese, in English)
    "locked": ("tạm khóa", "locked",
               "Chủ tài khoản không đăng nhập được; thư gửi đến vẫn được nhận và lưu giữ.",
               "The owner cannot log in; incoming mail is still received and kept."),
    "revoked": ("thu hồi", "revoked",
                "Chủ tài khoản không đăng nhập được và thư gửi đến bị từ chối; thư đã lưu được giữ lại.",
                "The owner cannot log in and incoming mail is refused; stored mail is kept."),
    "deleted": ("xóa", "deleted",
                "Tài khoản không còn sử dụng được và thư gửi đến bị từ chối.",
                "The account can no longer be used and incoming mail is refused."),
    "must_change_password": ("yêu cầu đổi mật khẩu", "required to change its password",
                             "Chủ tài khoản phải đổi mật khẩu ở lần đăng nhập tới.",
                             "The owner must change the password at the next login."),
}

_REASON_TEXT = {  # policy reason: (Vietnamese, English)
    "inactive": ("không được truy cập trong thời hạn quy định", "not accessed within the set period"),
    "notice": ("theo văn bản thông báo của đơn vị", "following the unit's written notice"),
    "left_without_notice": ("đã nghỉ việc hoặc chuyển công tác quá thời hạn quy định",
                            "the owner left longer ago than the set period"),
    "initial_password_not_changed": ("chưa đổi mật khẩu ban đầu", "the initial password was not changed"),
    "password_expired": ("mật khẩu đã quá hạn sử dụng", "the password is past its maximum age"),
}


def _local(when: _dt.datetime, english: bool = False) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M" if english else "%d/%m/%Y %H:%M")


def lifecycle_text(
    *, state: str, reason: str, address: str, display_name: str, unit_name: str | None,
    due_at: _dt.datetime, last_activity: _dt.datetime | None,
) -> tuple[str, str]:
    """(subject, body) telling a unit that ``address`` moved to ``state`` for ``reason``:
    Vietnamese first, English below (R-TEXT-1). Dates in the server's local time."""
    vi, en, means_vi, means_en = _STATE_TEXT.get(state, (state, state, "", ""))
    why_vi, why_en = _REASON_TEXT.get(reason, (reason, reason))
    unit_vi = f"Kính gửi: {unit_name}\n\n" if unit_name else ""
    unit_en = f"To: {unit_name}\n\n" if unit_name else ""
    last_vi = f"Lần truy cập hoặc kích hoạt gần nhất: {_local(last_activity)}.\n" if last_activity else ""
    last_en = f"Last access or activation: {_local(last_activity, True)}.\n" if last_activity else ""
    subject = f"Tài khoản {address} đã bị {vi} / Account {address} {en}"
    body = (
        f"{unit_vi}Tài khoản thư điện tử {address} ({display_name}) đã bị {vi} "
        f"từ {_local(due_at)}, lý do: {why_vi}.\n{last_vi}{means_vi}\n"
        "Để mở khóa hoặc cấp lại tài khoản, đơn vị gửi đề nghị đến bộ phận quản trị hệ thống thư điện tử.\n"
        "\n-----\n\n"
        f"{unit_en}The mail account {address} ({display_name}) has been {en} "
        f"as of {_local(due_at, True)}: {why_en}.\n{last_en}{means_en}\n"
        "To have it unlocked or re-issued, the unit sends a request to the mail system administrators.\n"
    )
    return subject, body


def lifecycle_notice(
    *, state: str, reason: str, address: str, display_name: str, unit_name: str | None,
    due_at: _dt.datetime, last_activity: _dt.datetime | None, to: str, to_name: str | None,
    domains: tuple[str, ...] | list[str], hostname: str, now: _dt.datetime | None = None,
) -> bytes:
    """The notice of one lifecycle change, addressed to ``to`` (the unit mailbox or its head)."""
    subject, body = lifecycle_text(state=state, reason=reason, address=address, display_name=display_name,
                                   unit_name=unit_name, due_at=due_at, last_activity=last_activity)
    return build_message(sender=postmaster(domains), to=to, to_name=to_name, subject=subject, body=body,
                         hostname=hostname, now=now, kind="lifecycle")
