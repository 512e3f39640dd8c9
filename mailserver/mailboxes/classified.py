"""Audit and notices of the classified-document guard (R-SEC-3), given to smtp/ by app.py.

Every refused or held attempt is one audit entry (``store.org.record_access``: actions
``classified-refuse`` / ``classified-hold``, on the sending account's mailbox) and one notice,
Vietnamese first with English below, to the sender's unit (its mailbox and head, as lifecycle
notices go), to the sender and to the postmaster account when there is one.
"""

from __future__ import annotations

import logging

from config.settings import Settings
from mailserver.mailboxes.notices import deliver_notice, postmaster
from storage.api import Store

log = logging.getLogger(__name__)


def notice_text(sender: str, verdict: str, marking: str, part: str, detail: str, action: str,
                held_id: int | None) -> tuple[str, str]:
    """(subject, body) of the notice about one message of ``sender``."""
    where = part or "thư / message"
    if verdict == "stamped":
        vi_what = f"có dấu độ mật \"{marking}\" trong {where}"
        en_what = f"carries the classification marking \"{marking}\" in {where}"
    else:
        vi_what = f"có {where} không đọc được để kiểm tra độ mật ({detail})"
        en_what = f"has {where}, which could not be checked for a classification marking ({detail})"
    if action == "hold":
        vi_done = f"Thư được giữ lại (số {held_id}) chờ quản trị hệ thống xem xét; chưa gửi đi."
        en_done = f"The message is held (number {held_id}) for the mail administrators to review; it was not sent."
    else:
        vi_done = "Thư đã bị từ chối, không gửi đi."
        en_done = "The message was refused and not sent."
    subject = f"Thư có thể chứa tài liệu mật từ {sender} / Possible classified document from {sender}"
    body = (
        f"Thư do {sender} gửi {vi_what}.\n{vi_done}\n"
        "Tài liệu mật không được gửi qua thư điện tử (Luật Bảo vệ bí mật nhà nước 2018).\n\n"
        f"A message sent by {sender} {en_what}.\n{en_done}\n"
        "Classified documents must not be sent by e-mail (Law on Protection of State Secrets 2018).\n"
    )
    return subject, body


class ClassifiedReports:
    """Thread-safe; ``report`` blocks (the SMTP handler calls it in a worker thread)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def report(self, *, account_id: int | None, actor_id: int | None, sender: str, outcome, action: str, tx_id: str,
               held_id: int | None = None) -> None:
        if account_id is None:
            return
        detail = f"id={tx_id} {outcome.verdict} {outcome.marking} in {outcome.part}: {outcome.detail}"
        if held_id is not None:
            detail = f"held={held_id} {detail}"
        self.store.org.record_access(actor_id if actor_id is not None else account_id, account_id,
                                     f"classified-{action}", detail[:500])
        if not self.settings.classified.notify_unit:
            return
        account = self.store.accounts.get_account_by_id(account_id)
        _unit, people = self.store.lifecycle.unit_contacts(account_id)
        operator = self.store.accounts.get_account(postmaster(self.settings.domains))
        readers = {p.id: p for p in [*people, *([account] if account is not None else []),
                                      *([operator] if operator is not None else [])]}
        subject, body = notice_text(sender, outcome.verdict, outcome.marking, outcome.part, outcome.detail, action, held_id)
        deliver_notice(self.store, self.settings, readers.values(), subject=subject, body=body, kind="classified",
                       about=sender)
