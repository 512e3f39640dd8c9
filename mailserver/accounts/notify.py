"""Telling people that the operator locked or revoked an account (R-ACC-2: "tells the owner";
R-LIFE-3: the unit is told of every change): a notice in Vietnamese and English in the INBOX of
the owner, of the owner's unit mailbox and of the unit's head.

Delivered straight into the store (a locked mailbox still receives; a revoked one refuses mail
from outside, but its owner's notice is kept with its mail for when it is given back).
"""

from __future__ import annotations

import datetime as _dt

from config.settings import Settings
from storage.api import Account, DeliveryTarget, Store

#: What an operator's action is called in the notice when no reason was given.
OPERATOR_REASON = "quyết định của bộ phận quản trị hệ thống / the mail administrators' decision"


def tell_state_change(store: Store, settings: Settings, account: Account, state: str, reason: str,
                      now: _dt.datetime, *, owner: bool = True, unit: bool = True) -> list[str]:
    """Deliver the notice of ``account`` moving to ``state`` to its owner and/or its unit mailbox
    and head; returns who got it. (A revoked mailbox refuses deliveries: its owner is told just
    before the change.)"""
    from mailserver.mailboxes.notices import lifecycle_notice

    unit_name, contacts = store.lifecycle.unit_contacts(account.id) if unit else (None, [])
    told = []
    for person, to_unit in [*([(account, None)] if owner else []), *((p, unit_name) for p in contacts)]:
        raw = lifecycle_notice(
            state=state, reason=reason or OPERATOR_REASON, address=account.address, display_name=account.display_name,
            unit_name=to_unit, due_at=now, last_activity=account.last_login_at, to=person.address,
            to_name=person.display_name, domains=settings.domains, hostname=settings.hostname, now=now,
        )
        outcome = store.messages.deliver(store.messages.put_blob(raw), [DeliveryTarget(person.id, "INBOX", quota_limit=None)])[0]
        if outcome.ok:
            told.append(person.address)
    return told


def expiry_warning_text(address: str, display_name: str, due: _dt.datetime, portal: str) -> tuple[str, str]:
    """(subject, body): Vietnamese first, English below (R-TEXT-1, R-PASS-4)."""
    local = due.astimezone()
    subject = f"Mật khẩu của {address} sắp hết hạn / The password of {address} expires soon"
    body = (
        f"Kính gửi {display_name},\n\n"
        f"Mật khẩu hộp thư {address} sẽ hết hạn vào {local:%d/%m/%Y %H:%M}. Xin đổi mật khẩu trước thời hạn "
        f"tại {portal} ; sau thời hạn, chương trình thư sẽ yêu cầu đổi mật khẩu trước khi dùng tiếp.\n"
        "\n-----\n\n"
        f"Dear {display_name},\n\n"
        f"The password of the mailbox {address} expires on {local:%Y-%m-%d %H:%M}. Please change it before then "
        f"at {portal} ; after that, your mail programs will ask you to change it before going on.\n"
    )
    return subject, body


def warn_password_expiry(store: Store, settings: Settings, account: Account, due: _dt.datetime,
                         now: _dt.datetime) -> bool:
    """Mail the owner once per password (R-PASS-4); the audit log remembers it was sent."""
    from mailserver.mailboxes.notices import build_message, postmaster

    detail = f"due={due.isoformat()}"
    if any(e.action == "password-warning" and e.detail == detail for e in store.org.audit_log(account.id, limit=200)):
        return False
    portal = settings.password_url() or "cổng thông tin / the portal"
    subject, body = expiry_warning_text(account.address, account.display_name, due, portal)
    raw = build_message(sender=postmaster(settings.domains), to=account.address, to_name=account.display_name,
                        subject=subject, body=body, hostname=settings.hostname, now=now, kind="password")
    outcome = store.messages.deliver(store.messages.put_blob(raw), [DeliveryTarget(account.id, "INBOX", quota_limit=None)])[0]
    if outcome.ok:
        store.org.record_access(None, account.id, "password-warning", detail)
    return outcome.ok
