"""``account list``, ``quota report`` and ``queue list`` filtered by ``--unit`` (the unit and the
units below it) and ``--state``, and printed as ``--json`` or ``--csv`` for scripts and
spreadsheets; an unknown unit is one line, not a traceback."""

from __future__ import annotations

import csv
import io
import json

REFUSED = 1


def test_lists_filter_by_unit_and_state_as_json_and_csv(make_server):
    server = make_server(start=False)
    server.cli("unit", "add", "Văn phòng Bộ", "--code", "vp", "--address", "vanphong@example.gov.vn")
    server.cli("unit", "add", "Phòng Tổ chức", "--code", "tc", "--parent", "vp", "--address", "tochuc@example.gov.vn")
    server.cli("unit", "add", "Thanh tra", "--code", "tt", "--address", "thanhtra@example.gov.vn")
    for address, name in (("annv@example.gov.vn", "Nguyễn Văn An"), ("binhtt@example.gov.vn", "Trần Thị Bình"),
                          ("cuonglv@example.gov.vn", "Lê Văn Cường")):
        server.add_account(address, "Mat-khau-2026!", name=name)
    store = server.open_store()
    try:
        org = store.org
        units = {u.code: u for u in org.list_units()}
        for address, code in (("annv@example.gov.vn", "vp"), ("binhtt@example.gov.vn", "tc"), ("cuonglv@example.gov.vn", "tt")):
            org.set_profile(store.accounts.get_account(address).id, unit_id=units[code].id)
        queued = store.queue.enqueue(store.messages.put_blob(b"Subject: q\r\n\r\nx\r\n"), "binhtt@example.gov.vn",
                                     ["z@nowhere.vn"])
        store.queue.enqueue(store.messages.put_blob(b"Subject: r\r\n\r\ny\r\n"), "cuonglv@example.gov.vn", ["y@nowhere.vn"])
    finally:
        store.close()
    server.cli("account", "lock", "binhtt@example.gov.vn")

    rows = json.loads(server.cli("account", "list", "--unit", "vp", "--json").stdout)
    assert {r["address"] for r in rows} == {"annv@example.gov.vn", "binhtt@example.gov.vn",
                                            "vanphong@example.gov.vn", "tochuc@example.gov.vn"}
    assert next(r for r in rows if r["address"] == "annv@example.gov.vn")["name"] == "Nguyễn Văn An"
    locked = list(csv.DictReader(io.StringIO(server.cli("account", "list", "--state", "locked", "--csv").stdout)))
    assert [r["address"] for r in locked] == ["binhtt@example.gov.vn"] and locked[0]["state"] == "locked"
    table = server.cli("account", "list", "--unit", "tt").stdout
    assert "cuonglv@example.gov.vn" in table and "annv@" not in table

    report = json.loads(server.cli("quota", "report", "--unit", "tc", "--state", "locked", "--json").stdout)
    assert [r["address"] for r in report] == ["binhtt@example.gov.vn"] and report[0]["limit_bytes"] > 0

    items = json.loads(server.cli("queue", "list", "--unit", "vp", "--json").stdout)
    assert [(i["id"], i["recipient"], i["state"]) for i in items] == [(queued, "z@nowhere.vn", "queued")]
    all_items = list(csv.DictReader(io.StringIO(server.cli("queue", "list", "--state", "queued", "--csv").stdout)))
    assert len(all_items) == 2
    assert json.loads(server.cli("queue", "list", "--state", "failed", "--json").stdout) == []

    unknown = server.cli("account", "list", "--unit", "khong-co", check=False)
    assert unknown.returncode == REFUSED and "no unit khong-co" in unknown.stderr and "Traceback" not in unknown.stderr
    both = server.cli("account", "list", "--json", "--csv", check=False)
    assert both.returncode == 2  # bad usage
