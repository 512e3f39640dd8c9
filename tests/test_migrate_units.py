"""The pure parts of ``migrate imap``: folder mapping (RFC 6154 special use, Vietnamese names,
other delimiters and namespaces), which messages are missing (resume without a duplicate), flags
kept, and the accounts CSV's errors (file and line)."""

from __future__ import annotations

import datetime as _dt
import unicodedata
from collections import Counter

import pytest

from mailserver.migrate.folders import SourceFolder, ancestors, map_folders
from mailserver.migrate.plan import SourceMessage, message_id_from_header, message_key, missing, our_flags
from mailserver.migrate.sources import AccountsFileError, read_accounts

WHEN = _dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=_dt.UTC)


def _f(name, delimiter="/", *attrs):
    return SourceFolder(name, delimiter, frozenset(a.lower() for a in attrs))


def _targets(folders, prefix=""):
    return {m.source: (m.target, m.special_use) for m in map_folders(folders, prefix)}


def test_announced_special_use_wins_over_names():
    got = _targets([_f("INBOX"), _f("Sent Items", "/", "\\Sent"), _f("Sent"), _f("Thư rác", "/", "\\Junk")])
    assert got["Sent Items"] == ("Sent", "\\Sent")
    assert got["Sent"] == ("Sent", None)  # an ordinary folder named Sent: merged by name, dedup keeps it safe
    assert got["Thư rác"] == ("Junk", "\\Junk")


def test_well_known_names_of_exchange_and_vietnamese_clients_are_matched():
    got = _targets([_f("Deleted Items"), _f("Junk E-mail"), _f("Thư đã gửi"), _f("Thư nháp"), _f("Lưu trữ")])
    assert got == {"Deleted Items": ("Trash", "\\Trash"), "Junk E-mail": ("Junk", "\\Junk"),
                   "Thư đã gửi": ("Sent", "\\Sent"), "Thư nháp": ("Drafts", "\\Drafts"),
                   "Lưu trữ": ("Archive", "\\Archive")}


def test_only_one_folder_is_guessed_per_special_use_and_only_at_the_top():
    got = _targets([_f("Spam"), _f("Junk"), _f("Dự án/Sent")])
    assert got["Spam"] == ("Junk", "\\Junk") and got["Junk"] == ("Junk", None)
    assert got["Dự án/Sent"] == ("Dự án/Sent", None)


def test_courier_namespace_and_dot_delimiter_become_our_slash_hierarchy():
    got = _targets([_f("INBOX", "."), _f("INBOX.Sent", "."), _f("INBOX.Công văn.2025", "."), _f("INBOX.a/b", ".")],
                   prefix="INBOX.")
    assert got["INBOX"] == ("INBOX", None)
    assert got["INBOX.Sent"] == ("Sent", "\\Sent")
    assert got["INBOX.Công văn.2025"] == ("Công văn/2025", None)
    assert got["INBOX.a/b"] == ("a-b", None)


def test_names_are_stored_nfc_and_virtual_folders_are_skipped_with_a_reason():
    decomposed = unicodedata.normalize("NFD", "Hộp thư")
    maps = {m.source: m for m in map_folders([_f(decomposed), _f("[Gmail]/All Mail", "/", "\\All"), _f("[Gmail]", "/", "\\Noselect")])}
    assert maps[decomposed].target == "Hộp thư"
    assert maps["[Gmail]/All Mail"].target is None and "virtual" in maps["[Gmail]/All Mail"].reason
    assert maps["[Gmail]"].target is None and maps["[Gmail]"].reason == ""
    assert ancestors("a/b/c") == ["a", "a/b"]


def _m(uid, mid, size=100):
    return SourceMessage(uid, size, mid, WHEN, frozenset())


def test_missing_counts_copies_so_resume_never_duplicates():
    source = [_m(1, "<a@x>"), _m(2, "<a@x>"), _m(3, "<b@x>"), _m(4, None), _m(5, "<b@x>", 200)]
    present = Counter([message_key("<a@x>", 100, WHEN), message_key(" <b@x>", 100, WHEN)])
    assert [m.uid for m in missing(source, present)] == [2, 4, 5]
    present.update([message_key(None, 100, WHEN + _dt.timedelta(seconds=0.5))])
    assert [m.uid for m in missing(source, present)] == [2, 5]


def test_message_id_is_read_unfolded_from_the_header_fields_answer():
    assert message_id_from_header(b"Message-ID:\r\n <long.id@old.gov.vn>\r\n\r\n") == "<long.id@old.gov.vn>"
    assert message_id_from_header(b"message-id: <x@y>\r\n\r\n") == "<x@y>"
    assert message_id_from_header(b"\r\n") is None


def test_flags_keep_system_flags_and_keywords_and_drop_what_cannot_be_stored():
    kept, dropped = our_flags([b"\\Seen", b"\\Recent", b"$Forwarded", b"\\Unknown", "\\FLAGGED", "Quan_trong"])
    assert kept == {"\\Seen", "$Forwarded", "\\Flagged", "Quan_trong"}
    assert dropped == ["\\Unknown"]


def test_accounts_file(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("address,source_user,source_password\n# comment\n\nAn@Example.gov.vn, an ,pw\nbinh@example.gov.vn,binh,\n")
    rows = read_accounts(path, have_master=True)
    assert [(r.line, r.address, r.source_user, r.source_password) for r in rows] == [
        (4, "an@example.gov.vn", "an", "pw"), (5, "binh@example.gov.vn", "binh", None)]
    with pytest.raises(AccountsFileError, match=r"a.csv:5: source_password is empty and no --master-user"):
        read_accounts(path, have_master=False)
    path.write_text("an@example.gov.vn,an,pw\nan@example.gov.vn,an2,pw\n")
    with pytest.raises(AccountsFileError, match=r"a.csv:2: an@example.gov.vn is already on line 1"):
        read_accounts(path, have_master=False)
    path.write_text("an@example.gov.vn,an,pw,extra\n")
    with pytest.raises(AccountsFileError, match=r"a.csv:1: expected address,source_user,source_password"):
        read_accounts(path, have_master=False)
