"""What the password page tells users before and after they change a password (pure functions).

Why: users meet the profile's rules (R-PASS-2/3) and the initial-password deadline (R-PASS-1,
R-PASS-3) before typing, not after a refusal; and after the change they need the one thing next:
the settings of their mail program, taken from the listeners actually configured.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from config.settings import Listener, Settings, Passwords

_CLASSES_VI = "chữ hoa, chữ thường, chữ số, ký tự đặc biệt"
_CLASSES_EN = "upper-case letters, lower-case letters, digits, special characters"


def password_rules(p: Passwords) -> list[tuple[str, str]]:
    """The rules of ``passwords:`` as (Vietnamese, English) sentences, in the order users check them."""
    rules = [(f"Dài ít nhất {p.min_length} ký tự.", f"At least {p.min_length} characters long.")]
    if p.min_classes >= 4:
        rules.append((f"Có đủ cả 4 loại: {_CLASSES_VI}.", f"All 4 kinds: {_CLASSES_EN}."))
    elif p.min_classes > 1:
        rules.append((f"Có ít nhất {p.min_classes} trong 4 loại: {_CLASSES_VI}.",
                      f"At least {p.min_classes} of 4 kinds: {_CLASSES_EN}."))
    if p.reject_account_name:
        rules.append(("Không trùng với tên hộp thư.", "Not the same as the mailbox name."))
    rules.append(("Khác mật khẩu hiện tại.", "Different from the current password."))
    if p.max_age_months:
        rules.append((f"Phải đổi mật khẩu ít nhất {p.max_age_months} tháng một lần.",
                      f"Change it at least every {p.max_age_months} months."))
    return rules


def initial_deadline(p: Passwords) -> tuple[str, str]:
    """When an initial password must be changed (R-PASS-1 molisa: hours; R-PASS-3 hcm-q4: at first login)."""
    if p.initial_change_hours:
        return (f"Mật khẩu ban đầu phải được đổi trong vòng {p.initial_change_hours} giờ kể từ khi được cấp; "
                "quá hạn, hộp thư bị khoá.",
                f"An initial password must be changed within {p.initial_change_hours} hours of being issued, "
                "or the mailbox is locked.")
    if p.first_login_grace_hours is not None:
        return ("Mật khẩu ban đầu phải được đổi ngay ở lần đăng nhập đầu tiên; không đổi, hộp thư bị khoá.",
                "An initial password must be changed at first login, or the mailbox is locked.")
    return ("Mật khẩu ban đầu phải được đổi ở lần đăng nhập đầu tiên.",
            "An initial password must be changed at first login.")


@dataclass(frozen=True)
class ClientSetting:
    """One row of the mail-program settings: incoming (IMAP/POP3) or outgoing (SMTP) server."""

    kind_vi: str
    kind_en: str
    protocol: str  # IMAP, POP3, SMTP
    host: str
    port: int
    security: str  # SSL/TLS or STARTTLS, as mail programs name it


_ROWS = (  # listener, direction, protocol, security; preferred (implicit TLS) first
    ("imaps", "Thư đến", "Incoming", "IMAP", "SSL/TLS"), ("imap", "Thư đến", "Incoming", "IMAP", "STARTTLS"),
    ("pop3s", "Thư đến", "Incoming", "POP3", "SSL/TLS"), ("pop3", "Thư đến", "Incoming", "POP3", "STARTTLS"),
    ("submissions", "Thư đi", "Outgoing", "SMTP", "SSL/TLS"), ("submission", "Thư đi", "Outgoing", "SMTP", "STARTTLS"),
)


def _host(settings: Settings, listener: Listener) -> str:
    try:
        if ipaddress.ip_address(listener.address).is_loopback:
            return listener.address  # reachable only there (a test or a proxy in front)
    except ValueError:
        pass
    return settings.hostname


def client_settings(settings: Settings) -> list[ClientSetting]:
    """Every configured user-facing listener as a mail program asks for it."""
    rows = []
    for name, kind_vi, kind_en, protocol, security in _ROWS:
        listener = getattr(settings.listeners, name)
        if listener is not None:
            rows.append(ClientSetting(kind_vi, kind_en, protocol, _host(settings, listener), listener.port, security))
    return rows
