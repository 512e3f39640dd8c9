"""What the running configuration switches off or loosens against a profile's rules (R-*).

Small pure functions over two ``Settings`` (the running one, the profile's own): each returns
``Finding``s, which ``mailserver compliance`` prints under the requirement they break. A finding
with ``breaks`` false is a change that still meets the regulation (a stricter value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config.settings import Settings
from mailserver.compliance.matrix import setting_value
from mailserver.compliance.values import show

#: A larger value (or none at all) loosens the rule: limits and deadlines.
LOWER_IS_STRICTER = frozenset({
    "quota.mailbox", "quota.attachment",
    "passwords.initial_change_hours", "passwords.first_login_grace_hours", "passwords.max_age_months",
    "lifecycle.revoke_after_notice_days", "lifecycle.lock_after_inactive_months",
    "lifecycle.revoke_after_inactive_months", "lifecycle.delete_after_inactive_months",
    "lifecycle.leaver_revoke_months", "lifecycle.leaver_revoke_max_months",
})
#: A smaller value loosens the rule.
HIGHER_IS_STRICTER = frozenset({"passwords.min_length", "passwords.min_classes", "passwords.unlock_wait_days"})
#: Switching these off loosens the rule.
ON_IS_REQUIRED = frozenset({"passwords.reject_account_name", "lifecycle.notify_unit", "dkim.sign"})
#: Deadlines that only ``lifecycle run`` applies.
LIFECYCLE_KEYS = tuple(sorted(k for k in LOWER_IS_STRICTER if k.startswith(("lifecycle.", "passwords."))))


@dataclass(frozen=True)
class Finding:
    setting: str
    running: str
    profile: str
    breaks: bool
    vi: str
    en: str


def _number(value: object) -> float:
    return math.inf if value is None else float(value)  # type: ignore[arg-type]


def compare(key: str, running: Settings, profile: Settings) -> Finding | None:
    """One setting against the profile's value: None when equal."""
    now, own = setting_value(running, key), setting_value(profile, key)
    if now == own:
        return None
    shown_now, shown_own = show(key, now), show(key, own)
    if key in LOWER_IS_STRICTER:
        breaks = _number(now) > _number(own)
    elif key in HIGHER_IS_STRICTER:
        breaks = _number(now) < _number(own)
    elif key in ON_IS_REQUIRED:
        breaks = bool(own) and not now
    elif key == "retention.rules":
        breaks = not {(r.folder, r.older_than) for r in own} <= {(r.folder, r.older_than) for r in now}
    elif key.endswith(".run_at"):  # a daily run switched off (lifecycle_off says what it skips)
        breaks = now is None and own is not None
    elif key == "address_rule":
        breaks = True
    else:
        breaks = False
    if breaks and key == "address_rule":
        return Finding(key, shown_now, shown_own, True,
                       f"address_rule là {shown_now}, không phải quy tắc {shown_own} của quy chế: địa chỉ mới không theo mẫu quy định.",
                       f"address_rule is {shown_now}, not the regulation's {shown_own}: new addresses do not follow its form.")
    if breaks:
        return Finding(key, shown_now, shown_own, True,
                       f"{key} là {shown_now}, nới lỏng giá trị {shown_own} của quy chế: quy định không còn được đáp ứng.",
                       f"{key} is {shown_now}, looser than the regulation's {shown_own}: the rule is no longer met.")
    return Finding(key, shown_now, shown_own, False,
                   f"{key} là {shown_now} (quy chế: {shown_own}); vẫn đáp ứng quy định.",
                   f"{key} is {shown_now} (the regulation's: {shown_own}); the rule is still met.")


def lifecycle_off(running: Settings) -> Finding | None:
    """The deadlines of R-PASS-1/3 and R-LIFE-2..5 are applied only by ``lifecycle run``: with
    ``lifecycle.run_at`` null and no schedule of the command, they never happen."""
    if running.lifecycle.run_at is not None:
        return None
    due = [k for k in LIFECYCLE_KEYS if setting_value(running, k) is not None]
    if not due:
        return None
    return Finding("lifecycle.run_at", "off", "HH:MM", True,
                   "Việc kiểm tra hằng ngày đang tắt (lifecycle.run_at: null): các thời hạn "
                   f"{', '.join(due)} không bao giờ được áp dụng, trừ khi người quản trị lập lịch "
                   "chạy `mailserver lifecycle run`.",
                   "The daily run is off (lifecycle.run_at: null): the deadlines "
                   f"{', '.join(due)} are never applied unless the operator schedules `mailserver lifecycle run`.")


def retention_off(running: Settings) -> Finding | None:
    """R-QUOTA-2: rules without the daily run (``retention.run_at`` null) delete nothing."""
    if running.retention.run_at is not None or not running.retention.rules:
        return None
    return Finding("retention.run_at", "off", "HH:MM", True,
                   "Việc xoá thư cũ hằng ngày đang tắt (retention.run_at: null): các quy tắc lưu giữ "
                   "chỉ chạy khi người quản trị gọi `mailserver retention run`.",
                   "The daily expiry is off (retention.run_at: null): the retention rules run only when "
                   "the operator calls `mailserver retention run`.")


def filters_off(running: Settings) -> list[Finding]:
    """R-SEC-1: every regulation asks that spam and mail carrying viruses be reduced."""
    found = []
    if running.filters.spamd is None:
        found.append(Finding("filters.spamd", "off", "on", True,
                             "Không có bộ lọc thư rác (filters.spamd): thư rác không được giảm thiểu.",
                             "No spam filter (filters.spamd): spam is not reduced."))
    if running.filters.clamd is None:
        found.append(Finding("filters.clamd", "off", "on", True,
                             "Không có bộ quét vi-rút (filters.clamd): thư mang vi-rút không bị chặn.",
                             "No virus scanner (filters.clamd): mail carrying viruses is not stopped."))
    return found


def plaintext_auth(running: Settings) -> Finding | None:
    """R-SEC-1: passwords travel in clear text only where nobody else can read them."""
    web = running.listeners.web
    if web is not None and not running.web.tls:
        return Finding("web.tls", "false", "true", False,
                       f"Cổng thông tin dùng HTTP không mã hoá trên {web.address} (chỉ địa chỉ loopback, "
                       "sau một proxy HTTPS).",
                       f"The portal speaks plain HTTP on {web.address} (loopback only, behind an HTTPS proxy).")
    return None
