"""The pure parts of SEARCH/SORT/THREAD: the RFC 5256 base subject, i;ascii-casemap, the Date:
header's own day, the THREAD algorithms (imap/thread.py), PARTIAL ranges; and migration 0013's
backfill on a store made at the schema before it."""

from __future__ import annotations

import datetime as _dt
import json
import sqlite3

import pytest

from imap import thread
from imap.op.search import parse_partial, partial_slice
from imap.wire import ParseError
from storage.indexing import ascii_casemap, base_subject, extract_subject, sent_day, thread_refs
from storage.search import ThreadMessage
from tests.conftest import wait_until


@pytest.mark.parametrize(
    "subject, base, reply",
    [
        ("Re: hello", "hello", True),
        ("Fwd: Re: [list] Re: x (fwd)", "x", True),
        ("[FWD: x]", "x", True),
        ("[xyz]", "[xyz]", False),  # only a blob: kept
        ("[a] [b]", "[b]", False),
        ("[a] Re: [b] foo", "foo", True),
        ("re[2]: x", "x", True),
        ("RE: [FWD: [PATCH] x]", "x", True),
        ("  a \t  b  ", "a b", False),
        ("Tr: x", "Tr: x", False),  # RFC 5256 knows only re, fw and fwd
        ("Fw: Công văn", "Công văn", True),
        ("", "", False),
    ],
)
def test_base_subject(subject, base, reply):
    assert extract_subject(subject) == (base, reply)
    assert base_subject(subject) == base


def test_ascii_casemap_folds_only_ascii_letters():
    assert ascii_casemap("abc_đĐß Ánh") == "ABC_đĐß ÁNH"
    assert ascii_casemap("a\x00b") == "A B"  # PostgreSQL text holds no NUL


def test_sent_day_is_the_date_header_day_in_its_own_zone():
    assert sent_day("Tue, 02 Jan 2024 00:30:00 +0700") == _dt.date(2024, 1, 2)
    assert sent_day("Mon, 01 Jan 2024 23:30:00 -0500") == _dt.date(2024, 1, 1)
    assert sent_day(None) == sent_day("soon") == sent_day("31 Feb 2024 10:00 +0000") == _dt.date(1970, 1, 1)


def test_thread_refs_prefers_references_then_the_first_in_reply_to():
    assert thread_refs("<A@x> junk <b@x>", "<c@x>") == "<a@x> <b@x>"
    assert thread_refs("no ids", "<c@x> <d@x>") == "<c@x>"
    assert thread_refs(None, None) == ""
    assert thread_refs("<a\x00b@x> <c@x>", None) == "<c@x>"


def _m(uid, mid="", refs=(), subject="S", reply=False, day=None) -> ThreadMessage:
    when = _dt.datetime(2024, 1, day or uid, tzinfo=_dt.UTC)
    return ThreadMessage(uid, mid, tuple(refs), subject, reply, when)


def _render(roots) -> bytes:
    return thread.render(roots, lambda u: u)


def test_references_keeps_a_dummy_root_of_several_children():
    # 2 and 3 both answer a message not in the folder: the dummy stays as their parent.
    msgs = [_m(1, "<z@x>", subject="A"), _m(2, "<b@x>", ["<a@x>"], "B"), _m(3, "<c@x>", ["<a@x>"], "C")]
    assert _render(thread.references(msgs)) == b"(1)((2)(3))"


def test_references_duplicate_ids_loops_and_a_truncated_chain():
    msgs = [
        _m(1, "<a@x>", subject="A"),
        _m(2, "<a@x>", subject="B"),  # duplicate Message-ID: a thread of its own
        _m(3, "<c@x>", ["<c@x>"], "C"),  # refers to itself: no loop
        _m(4, "<d@x>", ["<a@x>", "<d@x>"], "D"),  # its own id in the chain
        _m(5, "<e@x>", ["<a@x>"], "E"),
    ]
    assert _render(thread.references(msgs)) == b"(1 (4)(5))(2)(3)"


def test_references_subject_merge_makes_a_dummy_for_two_originals():
    msgs = [_m(1, "<a@x>", subject="PLAN"), _m(2, "<b@x>", subject="PLAN"), _m(3, "<c@x>", subject="")]
    assert _render(thread.references(msgs)) == b"((1)(2))(3)"


def test_references_sorts_siblings_by_sent_date_then_uid():
    msgs = [_m(1, "<a@x>"), _m(2, "<b@x>", ["<a@x>"], day=9), _m(3, "<c@x>", ["<a@x>"], day=5), _m(4, "<d@x>", ["<a@x>"], day=5)]
    assert _render(thread.references(msgs)) == b"(1 (3)(4)(2))"


def test_orderedsubject_groups_by_subject_sorted_by_first_date():
    msgs = [_m(1, subject="B", day=3), _m(2, subject="A", day=4), _m(3, subject="B", day=1), _m(4, subject="C", day=2)]
    assert _render(thread.orderedsubject(msgs)) == b"(3 1)(4)(2)"


def test_partial_ranges():
    items = [10, 20, 30, 40, 50]
    assert parse_partial(b"2:3") == parse_partial(b"3:2") == (2, 3)
    assert parse_partial(b"-1:-2") == (-2, -1)
    assert partial_slice(items, (2, 3)) == [20, 30]
    assert partial_slice(items, (-2, -1)) == [40, 50]
    assert partial_slice(items, (-9, -4)) == [10, 20]
    assert partial_slice(items, (6, 9)) == partial_slice(items, (-20, -6)) == []
    for bad in (b"0:1", b"-1:2", b"1", b"a:b", b"1:99999999999"):
        with pytest.raises(ParseError):
            parse_partial(bad)


def test_migration_backfills_sent_day_and_sort_keys(tmp_path):
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from storage.migrate import _config, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = _config(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        for head in ScriptDirectory.from_config(cfg).get_heads():
            if head != "0013_search_dates":
                command.upgrade(cfg, head)
    engine.dispose()
    envelope = {
        "date": "Tue, 02 Jan 2024 00:30:00 +0700", "subject": "=?utf-8?q?Re=3A_=5Bvb=5D_C=C3=B4ng_v=C4=83n?=",
        "from": [{"name": None, "adl": None, "mailbox": "An_b", "host": "x.vn"}], "to": [], "cc": [],
    }  # fmt: skip
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute("INSERT INTO blobs (sha256, size, data, created_at) VALUES ('s1', 1, x'00', '2026-01-01 00:00:00')")
        db.execute(
            "INSERT INTO blob_meta (sha256, sent_date, sort_subject, sort_from, sort_to, sort_cc, subject, \"from\", "
            "\"to\", cc, bcc, message_id, envelope, structure, headers, body) "
            "VALUES ('s1', '2024-01-01 17:30:00', 'cong van', 'an_b', '', '', '', '', '', '', '', '', ?, '{}', '', '')",
            (json.dumps(envelope),),
        )
    upgrade(url)
    with sqlite3.connect(tmp_path / "old.db") as db:
        row = db.execute("SELECT sent_day, sort_subject, sort_from, thread_refs FROM blob_meta").fetchone()
        cols = [r[1] for r in db.execute("PRAGMA table_info(messages)")]
    assert row == ("2024-01-02", "CôNG VăN", "AN_B", None)
    assert "savedate" in cols


def test_thread_reads_references_of_bodies_stored_before_the_column(store_url, tmp_path):
    """Bodies from before migration 0013 have no thread_refs: THREAD reads their header (also
    of a body kept as a file), and keeps what it read."""
    from sqlalchemy import create_engine, text

    from storage import search as q
    from storage.api import AccountState, DeliveryTarget
    from storage.sql import SqlStore

    store = SqlStore(store_url, blob_dir=tmp_path / "blobs", inline_blob_limit=2000)
    try:
        account = store.accounts.create_account("th@example.gov.vn", "T", "x", state=AccountState.ACTIVE)
        folder = store.folders.get_folder(account.id, "INBOX")
        heads = (
            "",  # kept as it is
            "References: <m0@x>\r\n" + "X-Pad: y\r\n" * 60,  # zstd-compressed in the database
            "In-Reply-To: <m1@x> <m0@x>\r\n" + "X-Pad: y\r\n" * 300,  # a file on SQLite
        )
        for n, extra in enumerate(heads):
            raw = f"Subject: s{n}\r\nMessage-ID: <M{n}@x>\r\n{extra}\r\nbody\r\n".encode()
            store.messages.deliver(store.messages.put_blob(raw), [DeliveryTarget(account.id)])
        engine = create_engine(store_url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE blob_meta SET thread_refs = NULL"))
        got = store.search.thread_messages(folder.id, q.All())
        assert [(t.message_id, t.references) for t in got] == [("<m0@x>", ()), ("<m1@x>", ("<m0@x>",)), ("<m2@x>", ("<m1@x>",))]
        assert _render(thread.references(got)) == b"(1 2 3)"

        def kept() -> bool:
            with engine.connect() as conn:
                return conn.execute(text("SELECT count(*) FROM blob_meta WHERE thread_refs IS NOT NULL")).scalar() == 3

        wait_until(kept, what="the References read at THREAD kept in blob_meta")
        engine.dispose()
    finally:
        store.close()
