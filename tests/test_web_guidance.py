"""What the password page tells users (mailserver/web/guidance.py, pure): the profile's rules
(R-PASS-2/3), the initial-password deadline (R-PASS-1 molisa 24 h, R-PASS-3 hcm-q4 first login)
and the mail-program settings of the configured listeners."""

from __future__ import annotations

from config.settings import Settings
from mailserver.web.guidance import client_settings, initial_deadline, password_rules


def test_rules_follow_the_profile():
    most = Settings(passwords={"min_length": 8, "min_classes": 3, "reject_account_name": True})
    hcm = Settings(passwords={"min_length": 8, "min_classes": 4, "reject_account_name": False, "max_age_months": 3})
    assert [vi for vi, _en in password_rules(most.passwords)][:3] == [
        "Dài ít nhất 8 ký tự.", "Có ít nhất 3 trong 4 loại: chữ hoa, chữ thường, chữ số, ký tự đặc biệt.",
        "Không trùng với tên hộp thư."]
    texts = " ".join(en for _vi, en in password_rules(hcm.passwords))
    assert "All 4 kinds" in texts and "every 3 months" in texts and "mailbox name" not in texts


def test_initial_deadline_by_profile():
    assert "24 giờ" in initial_deadline(Settings(passwords={"initial_change_hours": 24}).passwords)[0]
    assert "ngay ở lần đăng nhập đầu tiên" in initial_deadline(Settings(passwords={"first_login_grace_hours": 0}).passwords)[0]
    assert initial_deadline(Settings().passwords)[1] == "An initial password must be changed at first login."


def test_client_settings_from_configured_listeners_only():
    settings = Settings(hostname="mail.lamdong.gov.vn", listeners={
        "imaps": {"address": "0.0.0.0", "port": 993}, "submission": {"address": "::", "port": 587},
        "pop3": {"address": "127.0.0.1", "port": 1110}, "smtp": {"address": "0.0.0.0", "port": 25}})
    rows = [(c.protocol, c.host, c.port, c.security) for c in client_settings(settings)]
    assert rows == [("IMAP", "mail.lamdong.gov.vn", 993, "SSL/TLS"), ("POP3", "127.0.0.1", 1110, "STARTTLS"),
                    ("SMTP", "mail.lamdong.gov.vn", 587, "STARTTLS")]
