"""Retention (R-QUOTA-2): rules from the config, the daily job inside the server, and
`mailserver retention run [--dry-run]` in a subprocess on each backend."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from pydantic import ValidationError

from config.settings import Settings
from mailserver.maintenance.daily import next_run
from mailserver.mailboxes.retention import RetentionJob, rules_from
from quota.retention import RetentionRule
from storage import api
from storage.sql import SqlStore

pytestmark = pytest.mark.requirement("R-QUOTA-2")

DOMAIN = "example.gov.vn"
ICT = dt.timezone(dt.timedelta(hours=7))


def test_rules_are_read_from_the_config_in_days_and_months():
    s = Settings.model_validate({"retention": {"rules": [
        {"folder": "\\Junk", "older_than": "30d"}, {"folder": "*", "older_than": "6 months"},
    ]}})
    assert rules_from(s) == (RetentionRule("\\Junk", older_than_days=30), RetentionRule("*", older_than_months=6))
    assert rules_from(Settings()) == (RetentionRule("\\Junk", older_than_days=30),
                                      RetentionRule("\\Trash", older_than_days=30))


@pytest.mark.parametrize("retention", [
    {"rules": [{"folder": "\\Junk", "older_than": "30"}]},
    {"rules": [{"folder": "\\Junk", "older_than": "-3d"}]},
    {"rules": [{"folder": "", "older_than": "3d"}]},
    {"rules": [{"folder": "\\Junk"}]},
    {"run_at": "25:00"},
    {"run_at": "2h30"},
])
def test_bad_retention_settings_are_refused(retention):
    with pytest.raises(ValidationError):
        Settings.model_validate({"retention": retention})


def test_next_run_is_the_next_local_time_of_day():
    assert next_run("02:30", dt.datetime(2026, 11, 23, 1, 0, tzinfo=ICT)) == dt.datetime(2026, 11, 23, 2, 30, tzinfo=ICT)
    assert next_run("02:30", dt.datetime(2026, 11, 23, 2, 30, tzinfo=ICT)) == dt.datetime(2026, 11, 24, 2, 30, tzinfo=ICT)
    assert next_run("02:30", dt.datetime(2026, 12, 31, 23, 0, tzinfo=ICT)) == dt.datetime(2027, 1, 1, 2, 30, tzinfo=ICT)


def test_the_daily_job_runs_at_run_at_and_expunges(store_url, tmp_path):
    store = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    try:
        store.accounts.add_domain(DOMAIN)
        a = store.accounts.create_account(f"a@{DOMAIN}", "A", None)
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
        blob = store.messages.put_blob(b"Subject: spam\r\n\r\nbuy\r\n")
        store.messages.deliver(blob, [api.DeliveryTarget(a.id, "Junk")], internaldate=old)
        settings = Settings.model_validate({"retention": {"run_at": "02:30"}})
        # The clock says 02:29:59.8: the job sleeps 0.2 s, runs, then waits for the next day.
        fake_now = dt.datetime(2026, 11, 23, 2, 29, 59, 800000, tzinfo=ICT)

        async def main() -> int:
            job = RetentionJob(asyncio.get_running_loop(), settings, store, clock=lambda: fake_now).start()
            for _ in range(200):
                if job.runs:
                    break
                await asyncio.sleep(0.05)
            job.cancel()
            return job.runs

        assert asyncio.run(main()) == 1
        assert store.accounts.get_account_by_id(a.id).used_messages == 0
    finally:
        store.close()


def test_no_job_without_run_at():
    async def main():
        return RetentionJob(asyncio.get_running_loop(), Settings.model_validate({"retention": {"run_at": None}}),
                            store=None).start().task

    assert asyncio.run(main()) is None


def test_retention_run_cli_dry_run_lists_then_real_run_expunges(make_server):
    srv = make_server({"retention": {"rules": [{"folder": "\\Trash", "older_than": "30d"}], "run_at": None}},
                      start=False)
    srv.add_account(f"an@{DOMAIN}", "Secret-pass1")
    store = srv.open_store()
    try:
        a = store.accounts.get_account(f"an@{DOMAIN}")
        now = dt.datetime.now(dt.UTC)
        for n, days, folder in ((1, 45, "Trash"), (2, 5, "Trash"), (3, 90, "INBOX")):
            blob = store.messages.put_blob(f"Subject: m{n}\r\n\r\nbody {n}\r\n".encode())
            store.messages.deliver(blob, [api.DeliveryTarget(a.id, folder)], internaldate=now - dt.timedelta(days=days))
        before = store.accounts.get_account_by_id(a.id)
    finally:
        store.close()

    dry = srv.cli("retention", "run", "--dry-run")
    assert f"an@{DOMAIN}\tTrash\tuid 1\t" in dry.stdout
    assert "would expunge 1 message(s)" in dry.stdout
    real = srv.cli("retention", "run")
    assert "expunged 1 message(s)" in real.stdout
    again = srv.cli("retention", "run")
    assert "expunged 0 message(s)" in again.stdout
    store = srv.open_store()
    try:
        after = store.accounts.get_account_by_id(a.id)
        assert after.used_messages == before.used_messages - 1 == 2
        trash = store.folders.get_folder(a.id, "Trash")
        assert list(store.messages.open_view(trash.id, claim_recent=False).uids) == [2]
    finally:
        store.close()
