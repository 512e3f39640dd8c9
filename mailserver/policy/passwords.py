"""Password rules (R-PASS-1..4): what a new password must satisfy, and initial passwords.

``check_password`` is called wherever a password is set (CLI, portal, import) with the profile's
``passwords.min_length`` / ``passwords.min_classes`` (most art. 17.4: 8 and 3 of 4; hcm-q4
art. 8.3a: 8 and all 4). Each problem is a :class:`Reason`: a ``str`` equal to its stable English
code (for logs, tests and the CLI's exit message) carrying the Vietnamese and English texts shown
to the user.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from typing import Protocol

__all__ = ["PASSWORD_RULES", "Reason", "check_password", "character_classes", "generate_password", "reused"]


class Reason(str):
    """A refusal reason: equal to its code (``"too_short"``), with ``vi`` and ``en`` texts."""

    vi: str
    en: str

    def __new__(cls, code: str, vi: str, en: str) -> Reason:
        self = super().__new__(cls, code)
        self.vi = vi
        self.en = en
        return self

    @property
    def code(self) -> str:
        return str.__str__(self)


#: (min_length, min_classes) per profile, for the shipped YAML profiles. The other seeds only ask
#: for a change at first login and periodically (R-PASS-1, R-PASS-4); they use most's rule.
PASSWORD_RULES: dict[str, tuple[int, int]] = {
    "most": (8, 3),  # R-PASS-2
    "hcm-q4": (8, 4),  # R-PASS-3
    "molisa": (8, 3),
    "lamdong": (8, 3),
    "moj": (8, 3),
    "none": (8, 3),
}

_CLASS_NAMES_VI = ("chữ hoa", "chữ thường", "chữ số", "ký tự đặc biệt")
_CLASS_NAMES_EN = ("upper-case letters", "lower-case letters", "digits", "special characters")


def character_classes(password: str) -> tuple[bool, bool, bool, bool]:
    """Which of upper, lower, digit, special the password uses.

    Vietnamese letters count by their case (``Ă`` upper, ``đ`` lower); anything that is neither a
    letter nor a digit is special (the seeds list ``! @ # % & *`` as examples).
    """
    upper = any(c.isupper() for c in password)
    lower = any(c.islower() for c in password)
    digit = any(c.isdigit() for c in password)
    special = any(not c.isalnum() for c in password)
    return upper, lower, digit, special


def _names_equal(password: str, account_name: str) -> bool:
    wanted = password.casefold()
    name = account_name.casefold()
    return wanted == name or ("@" in name and wanted == name.split("@", 1)[0])


def check_password(
    password: str, *, account_name: str, min_length: int = 8, min_classes: int = 3
) -> list[Reason]:
    """Reasons the password is refused; an empty list means it is acceptable (R-PASS-2, R-PASS-3).

    ``account_name`` is the address or login name; the password may equal neither it nor its
    local part, whatever the case. Control characters are refused: a NUL would split a SASL PLAIN
    message and line breaks cannot be typed in a login form.
    """
    reasons: list[Reason] = []
    if len(password) < min_length:
        reasons.append(
            Reason(
                "too_short",
                f"Mật khẩu phải có ít nhất {min_length} ký tự.",
                f"The password must have at least {min_length} characters.",
            )
        )
    if account_name and _names_equal(password, account_name):
        reasons.append(
            Reason(
                "equals_account_name",
                "Mật khẩu không được trùng với tên tài khoản.",
                "The password must not be the same as the account name.",
            )
        )
    used = character_classes(password)
    if sum(used) < min_classes:
        missing_vi = ", ".join(n for n, u in zip(_CLASS_NAMES_VI, used) if not u)
        missing_en = ", ".join(n for n, u in zip(_CLASS_NAMES_EN, used) if not u)
        reasons.append(
            Reason(
                "too_few_classes",
                f"Mật khẩu phải có ít nhất {min_classes} trong 4 loại ký tự "
                f"(chữ hoa, chữ thường, chữ số, ký tự đặc biệt); còn thiếu: {missing_vi}.",
                f"The password must use at least {min_classes} of 4 character classes "
                f"(upper, lower, digit, special); missing: {missing_en}.",
            )
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        reasons.append(
            Reason(
                "control_character",
                "Mật khẩu không được chứa ký tự điều khiển (xuống dòng, tab, NUL).",
                "The password must not contain control characters (line breaks, tab, NUL).",
            )
        )
    return reasons


def reused(password: str, earlier_hashes: Sequence[str], verify) -> Reason | None:
    """A refusal when ``password`` is one of ``earlier_hashes`` (the current one and those before
    it, as many as ``passwords.history`` says); ``verify(hash, password) -> bool`` checks one."""
    for hashed in earlier_hashes:
        if verify(hashed, password):
            n = len(earlier_hashes)
            return Reason(
                "reused",
                f"Mật khẩu mới phải khác {n} mật khẩu gần nhất đã dùng." if n > 1 else "Mật khẩu mới phải khác mật khẩu hiện tại.",
                f"The new password must differ from the last {n} passwords used." if n > 1 else "The new password must differ from the current one.",
            )
    return None


def expiry_warning_due(
    *, state: str, password_changed_at, created_at, max_age_months: int | None, warning_days: int | None, now,
):
    """When an active account's password expires (R-PASS-4), if a warning is due now: within
    ``warning_days`` before that deadline and not after it (then ``lifecycle run`` requires the
    change itself). None otherwise."""
    import datetime as _dt

    from mailserver.policy.lifecycle import add_months

    if state != "active" or max_age_months is None or not warning_days:
        return None
    due = add_months(password_changed_at or created_at, max_age_months)
    return due if due - _dt.timedelta(days=warning_days) <= now < due else None


def initial_change_required(*, state: str, since, enforce: bool, grace_hours: int | None, now) -> bool:
    """R-PASS-1 at the protocol level (``passwords.enforce_initial_change``): an account still on
    its initial password logs in only to the portal — IMAP, POP3 and submission refuse it — once
    ``grace_hours`` after the password was set have passed (None: at once)."""
    import datetime as _dt

    if not enforce or state != "must_change_password":
        return False
    if grace_hours is None or since is None:
        return True
    return now >= since + _dt.timedelta(hours=grace_hours)


def must_change_first(passwords, account, now) -> bool:
    """``initial_change_required`` for an account (``storage.api.Account``, read by attribute)
    under the ``passwords`` settings."""
    return initial_change_required(
        state=str(getattr(account.state, "value", account.state)),
        since=account.password_changed_at or account.created_at, enforce=passwords.enforce_initial_change,
        grace_hours=passwords.initial_change_grace_hours, now=now)


class _Chooser(Protocol):
    def choice(self, seq: Sequence[str]) -> str: ...

    def shuffle(self, x: list[str]) -> None: ...


# Letters and digits that are confused in print or handwriting (O/0/o, I/l/1/|) are left out, as
# are specials that trouble CSV result sheets, shells or quoting (, ; " ' ` \ space).
_UPPER = "".join(c for c in string.ascii_uppercase if c not in "OI")
_LOWER = "".join(c for c in string.ascii_lowercase if c not in "lo")
_DIGITS = "23456789"
_SPECIAL = "!@#%&*-+=?"
_GROUPS = (_UPPER, _LOWER, _DIGITS, _SPECIAL)


def generate_password(length: int = 12, rng: _Chooser | None = None) -> str:
    """An initial password that passes the strictest rule (R-PASS-3: all four classes).

    ``rng`` defaults to the OS's CSPRNG; tests pass a seeded ``random.Random``.
    """
    if length < 8:
        raise ValueError("initial passwords have at least 8 characters (R-PASS-2, R-PASS-3)")
    chooser: _Chooser = rng if rng is not None else secrets.SystemRandom()
    chars = [chooser.choice(group) for group in _GROUPS]
    alphabet = "".join(_GROUPS)
    chars += [chooser.choice(alphabet) for _ in range(length - len(chars))]
    chooser.shuffle(chars)
    return "".join(chars)
