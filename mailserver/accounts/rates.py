"""Sending rates of submission (R-SEC-1): messages and recipients per authenticated account per
clock hour (``guard.submission_messages_per_hour``, ``guard.submission_recipients_per_hour``).

A stolen password is most often used to send spam from the agency's own server, which then lands
on block lists. Counted in the login guard's table (``store.guard``) under one key per account
and hour, so every process of an installation counts together. Past a limit, MAIL and RCPT get a
temporary failure; the first refusal of an hour writes one notice, Vietnamese first with English
below, to the account's unit (its mailbox and head, as lifecycle notices go) and to the postmaster
account when there is one.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from config.settings import Settings
from mailserver.mailboxes.notices import deliver_notice, postmaster
from mailserver.policy.loginlog import log_limit
from storage.api import Store

log = logging.getLogger(__name__)
HOUR = 3600.0


def rate_notice_text(address: str, what: str, limit: int) -> tuple[str, str]:
    """(subject, body) of the notice that ``address`` reached its hourly ``what`` limit."""
    vi_what, en_what = ("thư", "messages") if what == "messages" else ("người nhận", "recipients")
    subject = f"Tài khoản {address} gửi quá nhiều thư / Sending limit reached by {address}"
    body = (
        f"Tài khoản {address} đã đạt giới hạn {limit} {vi_what} mỗi giờ khi gửi thư. Thư gửi thêm "
        "bị tạm từ chối cho đến giờ sau.\n"
        "Nếu người dùng không gửi nhiều thư như vậy, mật khẩu có thể đã bị lộ: hãy đổi mật khẩu ngay "
        "và báo cho quản trị hệ thống.\n\n"
        f"The account {address} reached its limit of {limit} {en_what} per hour. Further mail is "
        "refused for now and accepted again next hour.\n"
        "If its user did not send that much mail, the password may have been stolen: change it at "
        "once and tell the mail system administrators.\n"
    )
    return subject, body


class SendingRates:
    """Thread-safe; every method blocks (the SMTP handler calls it in a worker thread)."""

    def __init__(self, store: Store, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.messages = settings.guard.submission_messages_per_hour
        self.recipients = settings.guard.submission_recipients_per_hour
        self.clock = clock

    def _keys(self, account_id: int) -> tuple[str, str, str]:
        hour = int(self.clock() // HOUR)
        return f"rate:msgs:{account_id}:{hour}", f"rate:rcpts:{account_id}:{hour}", f"rate:told:{account_id}:{hour}"

    def over(self, account_id: int, client: str, recipients: int = 0) -> bool:
        """Whether one more message (``recipients=0``, at MAIL) or its ``recipients``-th recipient
        (at RCPT) would pass a limit; the refusal is logged and, once an hour, told."""
        msgs_key, rcpts_key, told_key = self._keys(account_id)
        found = self.store.guard.tallies([msgs_key, rcpts_key])
        sent = found.get(msgs_key, (0, 0.0))[0]
        reached = found.get(rcpts_key, (0, 0.0))[0]
        what = None
        if self.messages is not None and recipients == 0 and sent >= self.messages:
            what, limit = "messages", self.messages
        elif self.recipients is not None and recipients and reached + recipients > self.recipients:
            what, limit = "recipients", self.recipients
        if what is None:
            return False
        log_limit("submission", client, f"{what}-per-hour", f"account={account_id}")
        if self.store.guard.add_failure([told_key], self.clock(), HOUR)[told_key] == 1:
            self._tell(account_id, what, limit)
        return True

    def record(self, account_id: int, recipients: int) -> None:
        """Count one message accepted for ``recipients`` recipients."""
        msgs_key, rcpts_key, _ = self._keys(account_id)
        now = self.clock()
        self.store.guard.add_failure([msgs_key], now, HOUR)
        if recipients:
            self.store.guard.add_failure([rcpts_key], now, HOUR, count=recipients)

    def _tell(self, account_id: int, what: str, limit: int) -> None:
        account = self.store.accounts.get_account_by_id(account_id)
        if account is None:
            return
        _unit, people = self.store.lifecycle.unit_contacts(account_id)
        operator = self.store.accounts.get_account(postmaster(self.settings.domains))
        readers = {p.id: p for p in [*people, *([operator] if operator is not None else [])]}
        subject, body = rate_notice_text(account.address, what, limit)
        deliver_notice(self.store, self.settings, readers.values(), subject=subject, body=body, kind="rate",
                       about=account.address)
        if not readers:
            log.warning("rate limit of %s reached: no unit head nor postmaster account to tell", account.address)
