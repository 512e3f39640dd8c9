"""R-PASS-4: `lifecycle run` mails the owner (Vietnamese, then English) passwords.expiry_warning_days
before the password reaches max_age_months, once per password; time is `--now`, never a sleep."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

from mailserver.policy.lifecycle import add_months
from mailserver.policy.passwords import expiry_warning_due

PW = "Mk!12345678x"
T0 = dt.datetime(2026, 1, 10, 8, 0, tzinfo=dt.UTC)


def test_warning_window():
    args = dict(state="active", password_changed_at=T0, created_at=T0 - dt.timedelta(days=100), max_age_months=3, warning_days=7)
    due = add_months(T0, 3)
    assert expiry_warning_due(**args, now=due - dt.timedelta(days=8)) is None
    assert expiry_warning_due(**args, now=due - dt.timedelta(days=7)) == due
    assert expiry_warning_due(**args, now=due - dt.timedelta(seconds=1)) == due
    assert expiry_warning_due(**args, now=due) is None  # then the change itself is required
    assert expiry_warning_due(**{**args, "state": "locked"}, now=due - dt.timedelta(days=1)) is None
    assert expiry_warning_due(**{**args, "warning_days": None}, now=due - dt.timedelta(days=1)) is None


def test_lifecycle_run_mails_the_owner_once(make_server):
    srv = make_server({"passwords": {"max_age_months": 3, "expiry_warning_days": 7}}, start=False)
    address = f"hanmk@{srv.domain}"
    srv.add_account(address, PW)
    store = srv.open_store()
    try:
        changed = store.accounts.get_account(address).password_changed_at
    finally:
        store.close()
    due = add_months(changed if changed.tzinfo else changed.replace(tzinfo=dt.UTC), 3)
    early = srv.cli("lifecycle", "run", "--now", (due - dt.timedelta(days=10)).isoformat()).stdout
    assert "password_expiry_warning" not in early
    first = srv.cli("lifecycle", "run", "--now", (due - dt.timedelta(days=3)).isoformat()).stdout
    assert f"{address}\tactive -> active\tpassword_expiry_warning" in first
    again = srv.cli("lifecycle", "run", "--now", (due - dt.timedelta(days=2)).isoformat()).stdout
    assert "password_expiry_warning" not in again
    store = srv.open_store()
    try:
        account = store.accounts.get_account(address)
        folder = store.folders.get_folder(account.id, "INBOX")
        [info] = store.messages.fetch(folder.id, store.messages.open_view(folder.id, claim_recent=False).uids)
        msg = email.message_from_bytes(store.messages.read_blob(info.blob), policy=email.policy.default)
    finally:
        store.close()
    assert str(msg["Subject"]).startswith(f"Mật khẩu của {address} sắp hết hạn / The password")
    assert msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_content()
    assert body.index("Mật khẩu hộp thư") < body.index("The password of the mailbox")
