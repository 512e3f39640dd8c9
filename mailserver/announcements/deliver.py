"""Deliver an announcement (blocking; the CLI or a worker thread): one ``put_blob``, one
``deliver`` of every target — the write primitive's fan-out, one transaction, one stored body.
Announcements ignore quotas (a full mailbox still hears of the maintenance)."""

from __future__ import annotations

from typing import Any

from storage.api import AccountKind, DeliveryTarget, LOGIN_STATES


def recipients(store: Any, unit_code: str | None = None) -> list:
    """Accounts that log in (active, or yet to change the initial password), personal and unit
    mailboxes (a group's members get their own copy); of one unit and its sub-units if asked."""
    if unit_code is None:
        accounts = store.accounts.list_accounts()
    else:
        from mailserver.reports.data import mailboxes

        ids = {b.account_id for b in mailboxes(store, unit_code)[0]}
        accounts = [a for a in store.accounts.list_accounts() if a.id in ids]
    return [a for a in accounts if a.state in LOGIN_STATES and a.kind is not AccountKind.GROUP]


def deliver(store: Any, raw: bytes, accounts: list) -> tuple[int, str]:
    """(mailboxes that got it, sha256 of the one stored body)."""
    blob = store.messages.put_blob(raw)
    outcomes = store.messages.deliver(blob, [DeliveryTarget(a.id) for a in accounts]) if accounts else []
    return sum(1 for o in outcomes if o.ok), blob.sha256
