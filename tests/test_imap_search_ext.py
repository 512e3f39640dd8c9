"""SEARCH/SORT/THREAD conformance end to end over imaplib and raw sockets: SENT* by the Date:
header's own day (RFC 3501 §6.4.4), the RFC 5256 base subject and i;ascii-casemap, THREAD
(RFC 5256 §3), ESORT (RFC 5267), PARTIAL (RFC 9394), WITHIN (RFC 5032), SAVEDATE (RFC 8514)."""

from __future__ import annotations

import datetime as _dt
import imaplib
import re

import pytest

from tests.test_imap_e2e import PASSWORD


@pytest.fixture(scope="module")
def account(server):
    address = f"searchext@{server.domain}"
    server.add_account(address, PASSWORD)  # one account (hashing a password is slow): a folder per test
    return address


def _login(server, address, folder: str) -> imaplib.IMAP4:
    m = imaplib.IMAP4(server.host, server.port("imap"), timeout=10)
    m._encoding = "utf-8"
    m.login(address, PASSWORD)
    assert m.create(folder)[0] == "OK"
    m.folder = folder
    return m


def _msg(subject: str, date: str | None = "Mon, 01 Jan 2024 10:00:00 +0000", extra: str = "") -> bytes:
    head = f"From: a@example.vn\r\nSubject: {subject}\r\n" + (f"Date: {date}\r\n" if date else "") + extra
    return (head + "\r\n" + "body\r\n").encode("utf-8")


def _append(m, data: bytes, when: str = '"01-Jan-2024 10:00:00 +0000"') -> None:
    typ, _ = m.append(m.folder, None, when, data)
    assert typ == "OK"


def _untagged(m, name: str) -> list[bytes]:
    return [d for d in m.untagged_responses.pop(name, []) if d is not None]


def test_sent_dates_use_the_day_of_the_date_header_in_its_own_zone(server, account):
    m = _login(server, account, "T1")
    _append(m, _msg("a", "Tue, 02 Jan 2024 00:30:00 +0700"))  # 1 Jan 17:30 UTC
    _append(m, _msg("b", "Mon, 01 Jan 2024 23:30:00 -0500"))  # 2 Jan 04:30 UTC
    _append(m, _msg("c", None))
    m.select(m.folder)
    assert m.search(None, "SENTON", "2-Jan-2024") == ("OK", [b"1"])
    assert m.search(None, "SENTON", "1-Jan-2024") == ("OK", [b"2"])
    assert m.search(None, "SENTSINCE", "2-Jan-2024") == ("OK", [b"1"])
    # No Date: sent on 1-Jan-1970, as Dovecot counts it.
    assert m.search(None, "SENTBEFORE", "2-Jan-2024") == ("OK", [b"2 3"])
    assert m.search(None, "SENTON", "1-Jan-1970") == ("OK", [b"3"])
    m.logout()


def test_sort_subject_uses_the_rfc5256_base_subject_and_ascii_casemap(server, account):
    m = _login(server, account, "T2")
    for subject in ("[FWD: zebra]", "Re: Fwd: apple", "[blob]", "_under", "Ánh", "anh", "Re: [list] Banana (fwd)"):
        _append(m, _msg(subject))
    m.select(m.folder)
    typ, data = m.sort("(SUBJECT)", "UTF-8", "ALL")
    # keys: ZEBRA, APPLE, [BLOB], _UNDER, ÁNH, ANH, BANANA; octet order after upper-casing
    # ASCII letters only: "ANH" < "APPLE" < "BANANA" < "ZEBRA" < "[BLOB]" < "_UNDER" < "ÁNH"
    assert (typ, data) == ("OK", [b"6 2 7 1 3 4 5"])
    m.logout()


def _thread(m, algorithm: str, uid: bool = False) -> bytes:
    typ, data = m.uid("THREAD", algorithm, "UTF-8", "ALL") if uid else m.thread(algorithm, "UTF-8", "ALL")
    assert typ == "OK"
    return data[0]


def test_thread_references_links_replies_through_dummies_and_merges_subjects(server, account):
    m = _login(server, account, "T3")
    _append(m, _msg("gone"))
    m.select(m.folder)
    m.store("1", "+FLAGS", "\\Deleted")
    m.expunge()
    day = "Mon, 0%d Jan 2024 10:00:00 +0000"
    _append(m, _msg("Plan", day % 1, "Message-ID: <a@x>\r\n"))
    _append(m, _msg("Re: Plan", day % 3, "Message-ID: <c@x>\r\nReferences: <a@x> <b@x>\r\n"))  # <b@x> is missing
    _append(m, _msg("Re: Plan", day % 2, "Message-ID: <d@x>\r\nIn-Reply-To: <a@x>\r\n"))
    _append(m, _msg("Other", day % 4, "Message-ID: <e@x>\r\n"))
    _append(m, _msg("Re: Other", day % 5, "Message-ID: <f@x>\r\n"))  # no references: merged by subject
    _append(m, _msg("Lone", day % 6))
    m.select(m.folder)
    # 2 hangs under the dummy <b@x>, which is pruned (one child): 2 becomes a child of 1;
    # 5 is a reply by its subject and joins 4.
    assert _thread(m, "REFERENCES") == b"(1 (3)(2))(4 5)(6)"
    assert _thread(m, "ORDEREDSUBJECT") == b"(1 (3)(2))(4 5)(6)"
    assert _thread(m, "REFERENCES", uid=True) == b"(2 (4)(3))(5 6)(7)"
    with pytest.raises(imaplib.IMAP4.error):
        m.thread("BOGUS", "UTF-8", "ALL")
    m.logout()


def test_esort_and_partial(server, account):
    m = _login(server, account, "T4")
    for i, subject in enumerate(("d", "b", "e", "a", "c")):
        _append(m, _msg(subject))
    m.select(m.folder)
    raw = _esearch(m, "SORT", "RETURN", "(MIN MAX COUNT ALL)", "(SUBJECT)", "UTF-8", "ALL")
    assert raw.endswith(b"MIN 4 MAX 3 COUNT 5 ALL 4,2,5,1,3")
    raw = _esearch(m, "SORT", "RETURN", "(PARTIAL 2:3)", "(SUBJECT)", "UTF-8", "ALL")
    assert raw.endswith(b"PARTIAL (2:3 2,5)")
    raw = _esearch(m, "SORT", "RETURN", "(PARTIAL -1:-2 COUNT)", "(SUBJECT)", "UTF-8", "ALL")
    assert raw.endswith(b"COUNT 5 PARTIAL (-1:-2 1,3)")
    raw = _esearch(m, "SEARCH", "RETURN", "(PARTIAL -2:-1)", "ALL")
    assert raw.endswith(b"PARTIAL (-2:-1 4:5)")
    raw = _esearch(m, "SEARCH", "RETURN", "(PARTIAL 10:20)", "ALL")
    assert raw.endswith(b"PARTIAL (10:20 NIL)")
    for bad in ("(PARTIAL 0:2)", "(PARTIAL -1:2)", "(PARTIAL 1:2 ALL)", "(PARTIAL)"):
        with pytest.raises(imaplib.IMAP4.error):
            m._simple_command("SEARCH", "RETURN", bad, "ALL")
    m.logout()


def _esearch(m, *args) -> bytes:
    typ, data = m._simple_command(*args)
    assert typ == "OK", data
    lines = _untagged(m, "ESEARCH")
    assert len(lines) == 1
    return lines[0]


def test_within_younger_and_older_use_internaldate(server, account):
    m = _login(server, account, "T5")
    now = _dt.datetime.now(_dt.UTC)
    for hours in (30 * 24, 2, 0):
        when = now - _dt.timedelta(hours=hours)
        _append(m, _msg("w"), imaplib.Time2Internaldate(when.timestamp()))
    m.select(m.folder)
    assert m.search(None, "YOUNGER", "3600") == ("OK", [b"3"])
    assert m.search(None, "YOUNGER", str(3 * 3600)) == ("OK", [b"2 3"])
    assert m.search(None, "OLDER", str(24 * 3600)) == ("OK", [b"1"])
    with pytest.raises(imaplib.IMAP4.error):
        m.search(None, "YOUNGER", "0")
    caps = m.capabilities
    assert "WITHIN" in caps and "SAVEDATE" in caps and "ESORT" in caps and "THREAD=REFERENCES" in caps
    m.logout()


def test_savedate_is_the_time_the_message_entered_the_folder(server, account):
    m = _login(server, account, "T6")
    _append(m, _msg("s"), '"01-Jan-2020 10:00:00 +0000"')
    m.create("Archive")
    m.select(m.folder)
    typ, data = m.fetch("1", "(INTERNALDATE SAVEDATE)")
    assert typ == "OK"
    saved = re.search(rb'SAVEDATE "([^"]+)"', data[0]).group(1)
    when = _dt.datetime.strptime(saved.decode(), "%d-%b-%Y %H:%M:%S %z")
    assert abs((when - _dt.datetime.now(_dt.UTC)).total_seconds()) < 300
    today = _dt.datetime.now(_dt.UTC).strftime("%d-%b-%Y")
    assert m.search(None, "SAVEDON", today) == ("OK", [b"1"])
    assert m.search(None, "SAVEDBEFORE", "1-Jan-2021") == ("OK", [b""])
    assert m.search(None, "ON", "1-Jan-2020") == ("OK", [b"1"])
    assert m.search(None, "SAVEDATESUPPORTED") == ("OK", [b"1"])
    m.copy("1", "Archive")
    m.select("Archive")
    typ, data = m.fetch("1", "(SAVEDATE)")
    assert re.search(rb'SAVEDATE "', data[0])
    m.logout()


def test_sort_display_uses_the_display_name_else_the_address(server, account):
    m = _login(server, account, "T7")
    for sender in ("Zoe <a@x.vn>", "b@x.vn", "=?utf-8?q?Anh?= <z@x.vn>", '"ba" <c@x.vn>'):
        _append(m, f"From: {sender}\r\nTo: {sender}\r\nSubject: d\r\n\r\nx\r\n".encode())
    m.select(m.folder)
    # keys ZOE, B@X.VN, ANH, BA: "@" sorts before "A"
    assert m.sort("(DISPLAYFROM)", "UTF-8", "ALL") == ("OK", [b"3 2 4 1"])
    assert m.sort("(REVERSE DISPLAYTO)", "UTF-8", "ALL") == ("OK", [b"1 4 2 3"])
    assert m.sort("(FROM)", "UTF-8", "ALL") == ("OK", [b"1 2 4 3"])
    assert "SORT=DISPLAY" in m.capabilities
    m.logout()


def test_fetch_partial_takes_positions_of_the_set(server, account):
    m = _login(server, account, "T8")
    for i in range(6):
        _append(m, _msg(f"p{i}"))
    m.select(m.folder)
    m.store("2", "+FLAGS", "\\Deleted")
    m.expunge()  # UIDs 1 3 4 5 6
    typ, data = m.uid("FETCH", "1:*", "(UID) (PARTIAL -1:-2)")
    assert typ == "OK" and [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"5", b"6"]
    typ, data = m.uid("FETCH", "1:*", "(UID) (PARTIAL 2:3)")
    assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"3", b"4"]
    typ, data = m.uid("FETCH", "1:*", "(UID) (PARTIAL 9:10)")
    assert typ == "OK" and data == [None]
    with pytest.raises(imaplib.IMAP4.error):
        m.uid("FETCH", "1:*", "(UID) (PARTIAL 0:1)")
    assert "PARTIAL" in m.capabilities
    m.logout()
