"""Reports (R-OPS-1, R-OPS-2) from what real clients did: IMAP SELECT/STATUS of INBOX, mail in
over SMTP, mail out over submission. ``report checks`` judges each mailbox by the lamdong rule
(unit 4×/day, personal 2×/day); ``report stats`` adds the same recorded facts up as JSON, CSV and
one self-contained HTML file with SVG charts, which headless Chromium shows without sideways
scrolling; the portal's /reports gives it to operators only. SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import http.client
import imaplib
import io
import json
import re
import smtplib
import ssl
from zoneinfo import ZoneInfo

import pytest

from tests.browser import VIEWPORTS, chromium, overflow, screenshot
from tests.conftest import free_port, wait_until

DOMAIN = "example.gov.vn"
PERSON, UNIT_BOX = f"annv@{DOMAIN}", f"vanphong@{DOMAIN}"
PASSWORD = "Mat-khau-2026!"
TODAY = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
WEEKDAY = TODAY.weekday() < 5  # the rule is not applied on weekends


@pytest.fixture
def server(make_server):
    srv = make_server({"profile": "lamdong", "listeners": {"web": {"address": "127.0.0.1", "port": free_port()}},
                       "web": {"operators": [UNIT_BOX], "admin_from": ["127.0.0.1/32"]}})
    srv.cli("account", "add", "Nguyễn Văn An", "--address", PERSON, "--password", PASSWORD, "--active")
    srv.cli("unit", "add", "Văn phòng Sở", "--code", "vp", "--address", UNIT_BOX, "--password", PASSWORD)
    store = srv.open_store()
    try:
        store.org.set_profile(store.accounts.get_account(PERSON).id, unit_id=store.org.get_unit("vp").id)
    finally:
        store.close()
    return srv


def _activity(srv) -> None:
    unit = imaplib.IMAP4(srv.host, srv.port("imap"))
    unit.login(UNIT_BOX, PASSWORD)
    for _ in range(3):
        unit.select("INBOX")
    unit.status("INBOX", "(MESSAGES)")  # a STATUS of INBOX is a check too: 4 in all
    unit.logout()
    person = imaplib.IMAP4(srv.host, srv.port("imap"))
    person.login(PERSON, PASSWORD)
    person.select("INBOX")  # 1: short of lamdong's 2 a day
    person.logout()
    with smtplib.SMTP(srv.host, srv.port("smtp")) as mx:
        for i in range(3):
            mx.sendmail("x@other.gov.vn", [PERSON, UNIT_BOX], f"Subject: thu {i}\r\n\r\nNoi dung.\r\n".encode())
    with smtplib.SMTP(srv.host, srv.port("submission")) as sub:
        sub.login(PERSON, PASSWORD)
        sub.sendmail(PERSON, [UNIT_BOX], b"Subject: bao cao\r\n\r\nGui van phong.\r\n")


def _json(srv, *args):
    return json.loads(srv.cli(*args).stdout)


@pytest.mark.requirement("R-OPS-1", "R-OPS-2")
def test_checks_against_the_profile_rule_and_stats_from_the_same_facts(server, tmp_path):
    _activity(server)
    day = TODAY.isoformat()

    def checks():
        rows = {r["address"]: r for r in _json(server, "report", "checks", "--unit", "vp", "--from", day, "--to", day,
                                                "--format", "json")}
        return rows if rows[UNIT_BOX]["total"] == 4 and rows[PERSON]["total"] == 1 else None

    rows = wait_until(checks, timeout=30, what="the counters written")  # batches every few seconds
    assert rows[UNIT_BOX]["rule"]["en"] == "at least 4 times a day" and rows[PERSON]["rule"]["en"] == "at least 2 times a day"
    assert rows[UNIT_BOX]["days"] == [{"day": day, "checks": 4, "met": True if WEEKDAY else None}]
    assert rows[PERSON]["short_days"] == ([day] if WEEKDAY else [])
    text = server.cli("report", "checks", "--unit", "vp", "--from", day, "--to", day).stdout
    assert f"{UNIT_BOX}\tunit\tat least 4 times a day\ttotal=4" in text

    def stats():
        s = _json(server, "report", "stats", "--year", str(TODAY.year), "--format", "json")
        return s if s["total"]["received"] == 7 and s["total"]["sent"] == 1 else None

    s = wait_until(stats, timeout=30, what="the deliveries counted")
    total = s["total"]
    assert (total["received"], total["sent"], total["login_imap"], total["login_submission"], total["checks"]) == (7, 1, 2, 1, 5)
    month = next(m for m in s["months"] if m["month"] == f"{TODAY:%Y-%m}")
    assert (month["received"], month["sent"], month["logins"]) == (7, 1, 3)
    unit = next(u for u in s["units"] if u["unit"] == "Văn phòng Sở")
    assert (unit["accounts"], unit["received"], unit["checks"]) == (2, 7, 5) and unit["bytes_stored"] > 0
    quarter = f"{TODAY.year}Q{(TODAY.month - 1) // 3 + 1}"
    table = list(csv.DictReader(io.StringIO(server.cli("report", "stats", "--quarter", quarter, "--unit", "vp").stdout)))
    assert next(r for r in table if r["section"] == "total")["received"] == "7"

    out = tmp_path / "thong-ke.html"
    server.cli("report", "stats", "--year", str(TODAY.year), "--format", "html", "-o", str(out))
    page = out.read_text("utf-8")
    assert "Thống kê hệ thống thư điện tử" in page and "Mail system statistics" in page
    assert page.count("data:image/svg+xml;base64,") == 3 and "<script" not in page
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", page)  # nothing fetched from elsewhere
    for uri in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", page):
        svg = base64.b64decode(uri).decode("utf-8")
        assert "<script" not in svg and "<svg" in svg
    for name, width, height in VIEWPORTS:
        browser = chromium(width, height)
        try:
            browser.get(out.as_uri())
            assert browser.find_element("css selector", '#summary [data-key="received"]').text == "7"
            assert all(browser.execute_script("return [...document.images].map(i => i.naturalWidth > 0)"))
            scroll, inner = overflow(browser)
            assert scroll <= inner, (name, scroll, inner)
            screenshot(browser, f"{name}-report-stats")
        finally:
            browser.quit()
    for bad in (("--quarter", "2026Q5"), ("--year", "26")):
        result = server.cli("report", "stats", *bad, check=False)
        assert result.returncode == 2 and "expected" in result.stderr
    result = server.cli("report", "checks", "--unit", "khong-co", "--from", day, "--to", day, check=False)
    assert result.returncode == 1 and "no unit 'khong-co'" in result.stderr


def _get(srv, path: str, auth: tuple[str, str] | None = None, source: str = "127.0.0.1") -> tuple[int, dict, str]:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port("web"), context=ctx, timeout=30, source_address=(source, 0))
    headers = {"Authorization": "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()} if auth else {}
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    try:
        return r.status, dict(r.getheaders()), r.read().decode("utf-8")
    finally:
        conn.close()


@pytest.mark.requirement("R-OPS-2")
def test_portal_reports_for_operators_from_admin_networks_only(server):
    status, headers, _ = _get(server, "/reports")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert _get(server, "/reports", (PERSON, PASSWORD))[0] == 401  # a user, not an operator
    assert _get(server, "/reports", (UNIT_BOX, "Sai-mat-khau-1!"))[0] == 401
    status, headers, body = _get(server, f"/reports?year={TODAY.year}&unit=vp", (UNIT_BOX, PASSWORD))
    assert status == 200 and "Thống kê hệ thống thư điện tử" in body and "Văn phòng Sở" in body
    assert "img-src 'self' data:" in headers["Content-Security-Policy"] and "<style" not in body
    assert _get(server, "/reports?quarter=2026Q9", (UNIT_BOX, PASSWORD))[0] == 400
    assert _get(server, "/reports", (UNIT_BOX, PASSWORD), source="127.0.0.2")[0] == 404  # not in web.admin_from
