"""The six-month deletion of most (art. 17.3) and hcm-q4 (art. 11.8), R-QUOTA-2: every folder
of every mailbox, a unit's archive folder kept when the operator lists it in retention.keep,
and the owner told a week ahead in Vietnamese and English — each at the exact second and one
second before, on an injected clock (no sleeping)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest

from config.settings import Settings
from mailserver.compliance.matrix import profile_settings
from mailserver.mailboxes.retention import run_retention, upcoming
from storage import api
from storage.errors import NotFound
from storage.sql import SqlStore

pytestmark = pytest.mark.requirement("R-QUOTA-2")

DOMAIN = "most.gov.vn"
NOW = dt.datetime(2027, 3, 15, 2, 30, tzinfo=dt.UTC)
SIX_MONTHS_BEFORE = dt.datetime(2026, 9, 15, 2, 30, tzinfo=dt.UTC)  # the cutoff at NOW
SECOND = dt.timedelta(seconds=1)


def settings_for(profile: str, **retention) -> Settings:
    own = profile_settings(profile)
    return own.model_copy(update={"domains": (DOMAIN,), "retention": own.retention.model_copy(update=retention)})


@pytest.fixture
def store(store_url, tmp_path):
    s = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    s.accounts.add_domain(DOMAIN)
    yield s
    s.close()


def put(store, account, folder: str, when: dt.datetime, subject: str) -> None:
    try:
        store.folders.get_folder(account.id, folder)
    except NotFound:
        store.folders.create_folder(account.id, folder)
    blob = store.messages.put_blob(f"Subject: {subject}\r\n\r\nx\r\n".encode())
    assert store.messages.deliver(blob, [api.DeliveryTarget(account.id, folder)], internaldate=when)[0].ok


def subjects(store, account, folder: str) -> list[str]:
    f = store.folders.get_folder(account.id, folder)
    infos = store.messages.fetch(f.id, store.messages.open_view(f.id, claim_recent=False).uids)
    return [email.message_from_bytes(store.messages.read_blob(i.blob), policy=email.policy.default)["Subject"]
            for i in infos]


def test_the_profiles_delete_mail_over_six_months_in_every_folder():
    for profile in ("most", "hcm-q4"):
        rules = {(r.folder, r.older_than) for r in profile_settings(profile).retention.rules}
        assert ("*", "6m") in rules and ("\\Junk", "30d") in rules, profile
    assert ("*", "6m") not in {(r.folder, r.older_than) for r in profile_settings("lamdong").retention.rules}


@pytest.mark.parametrize("profile", ["most", "hcm-q4"])
def test_deleted_at_the_exact_second_kept_one_second_before(store, profile):
    a = store.accounts.create_account(f"annv@{DOMAIN}", "Nguyễn Văn An", None)
    put(store, a, "INBOX", SIX_MONTHS_BEFORE - SECOND, "over six months")
    put(store, a, "Công văn", SIX_MONTHS_BEFORE - SECOND, "folder over six months")
    put(store, a, "INBOX", SIX_MONTHS_BEFORE, "exactly six months")
    settings = settings_for(profile, notice_days=None)
    run_retention(store, settings, dry_run=False, now=NOW - SECOND)
    assert sorted(subjects(store, a, "INBOX")) == ["exactly six months", "over six months"]
    run_retention(store, settings, dry_run=False, now=NOW)
    assert subjects(store, a, "INBOX") == ["exactly six months"]
    assert subjects(store, a, "Công văn") == []
    run_retention(store, settings, dry_run=False, now=NOW + SECOND)
    assert subjects(store, a, "INBOX") == []


def test_a_unit_archive_marked_kept_is_never_touched(store):
    unit = store.accounts.create_account(f"vp@{DOMAIN}", "Văn phòng", None)
    put(store, unit, "Lưu trữ", dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "official letter of 2020")
    put(store, unit, "INBOX", dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "old inbox mail")
    settings = settings_for("most", keep=(f"vp@{DOMAIN}/Lưu trữ",), notice_days=None)
    run_retention(store, settings, dry_run=False, now=NOW)
    assert subjects(store, unit, "Lưu trữ") == ["official letter of 2020"]
    assert subjects(store, unit, "INBOX") == []


def test_the_owner_is_told_a_week_ahead_once_in_vietnamese_then_english(store):
    a = store.accounts.create_account(f"annv@{DOMAIN}", "Nguyễn Văn An", None)
    week = dt.timedelta(days=7)
    # Expires on the run of NOW + 7 days (its cutoff is SIX_MONTHS_BEFORE + 7 days, to the second).
    put(store, a, "Công văn", SIX_MONTHS_BEFORE + week - SECOND, "due in a week")
    put(store, a, "Junk", SIX_MONTHS_BEFORE, "spam")  # Junk is not announced
    settings = settings_for("most")
    assert [e.folder for e in upcoming(store, settings, NOW)] == ["Công văn"]
    assert upcoming(store, settings, NOW - dt.timedelta(days=1)) == []  # eight days ahead: not yet
    assert upcoming(store, settings, NOW + dt.timedelta(days=1)) == []  # announced yesterday: once
    run_retention(store, settings, dry_run=False, now=NOW)
    assert subjects(store, a, "Công văn") == ["due in a week"]  # a notice, not a deletion
    notices = [s for s in subjects(store, a, "INBOX")]
    assert notices == ["1 thư sẽ bị xoá ngày 22/03/2027 / 1 message(s) will be deleted on 22/03/2027"]
    f = store.folders.get_folder(a.id, "INBOX")
    info = store.messages.fetch(f.id, store.messages.open_view(f.id, claim_recent=False).uids)[0]
    body = email.message_from_bytes(store.messages.read_blob(info.blob), policy=email.policy.default).get_content()
    assert body.index("quá 6 tháng") < body.index("older than 6 months")
    assert "- Công văn: 1 thư" in body and "- Công văn: 1 message(s)" in body
    run_retention(store, settings, dry_run=False, now=NOW + dt.timedelta(days=1))
    assert len(subjects(store, a, "INBOX")) == 1  # no second notice for the same mail
    run_retention(store, settings, dry_run=False, now=NOW + week - SECOND)
    assert subjects(store, a, "Công văn") == ["due in a week"]
    run_retention(store, settings, dry_run=False, now=NOW + week)
    assert subjects(store, a, "Công văn") == []
