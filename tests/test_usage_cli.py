"""`mailserver quota show|set|class|report|recalc` in subprocesses on each backend:
sizes with units, bad sizes refused with the accepted forms (exit 2), refusals exit 1, never a
traceback."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from storage import api, models as m

DOMAIN = "example.gov.vn"
GiB = 1024**3
EXIT_REFUSED, EXIT_USAGE = 1, 2


@pytest.fixture
def srv(make_server):
    s = make_server({"quota": {"mailbox": "1GiB", "classes": {"lanh-dao": {"mailbox": "10GB"}}}}, start=False)
    s.add_account(f"an@{DOMAIN}", "Secret-pass1")
    s.add_account(f"binh@{DOMAIN}", "Secret-pass1", name="Trần Bình")
    return s


def test_show_set_and_reset_an_account_limit(srv):
    shown = srv.cli("quota", "show", f"an@{DOMAIN}").stdout
    assert "mailbox limit: 1 GiB (profile none)" in shown
    assert "5 GiB" in srv.cli("quota", "set", f"AN@{DOMAIN}", "5GB").stdout
    assert "mailbox limit: 5 GiB (account override)" in srv.cli("quota", "show", f"an@{DOMAIN}").stdout
    assert "1.5 GiB" in srv.cli("quota", "set", f"an@{DOMAIN}", "1.5GiB").stdout
    srv.cli("quota", "set", f"an@{DOMAIN}", "default")
    assert "mailbox limit: 1 GiB (profile none)" in srv.cli("quota", "show", f"an@{DOMAIN}").stdout


@pytest.mark.parametrize("bad", ["2 gigs", "-1", "", "1.5", "5 parsecs"])
def test_bad_sizes_are_refused_with_the_accepted_forms(srv, bad):
    result = srv.cli("quota", "set", f"an@{DOMAIN}", bad, check=False)
    assert result.returncode == EXIT_USAGE
    assert "512KB, 20MB, 20MiB, 1.5GiB, 2GB" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_refusals_exit_1_with_one_line(srv):
    for args in (("quota", "set", f"nobody@{DOMAIN}", "5GB"), ("quota", "show", f"nobody@{DOMAIN}"),
                 ("quota", "class", f"an@{DOMAIN}", "no-such-class"), ("quota", "set", f"an@{DOMAIN}", "unlimited")):
        result = srv.cli(*args, check=False)
        assert result.returncode == EXIT_REFUSED, args
        assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr


def test_class_sets_the_limit_and_report_lists_fullest_first(srv):
    assert "lanh-dao" in srv.cli("quota", "class", f"binh@{DOMAIN}", "lanh-dao").stdout
    assert "mailbox limit: 10 GiB (class lanh-dao)" in srv.cli("quota", "show", f"binh@{DOMAIN}").stdout
    store = srv.open_store()
    try:
        a = store.accounts.get_account(f"an@{DOMAIN}")
        store.messages.deliver(store.messages.put_blob(b"Subject: x\r\n\r\n" + b"y" * 5000), [api.DeliveryTarget(a.id)])
    finally:
        store.close()
    report = srv.cli("quota", "report").stdout
    assert report.index(f"an@{DOMAIN}") < report.index(f"binh@{DOMAIN}")
    assert "10 GiB" in report and "2 account(s)" in report
    over = srv.cli("quota", "report", "--over", "50").stdout
    assert f"an@{DOMAIN}" not in over and "0 account(s)" in over
    srv.cli("quota", "class", f"binh@{DOMAIN}", "none")
    assert "mailbox limit: 1 GiB" in srv.cli("quota", "show", f"binh@{DOMAIN}").stdout


def test_recalc_reports_drift_then_none(srv):
    store = srv.open_store()
    try:
        a = store.accounts.get_account(f"an@{DOMAIN}")
        store.messages.deliver(store.messages.put_blob(b"Subject: x\r\n\r\nhello\r\n"), [api.DeliveryTarget(a.id)])
        true_bytes = store.accounts.get_account_by_id(a.id).used_bytes

        def inject(conn, _changes):
            conn.execute(update(m.Account).where(m.Account.id == a.id).values(used_bytes=777, used_messages=9))

        store.core.run_write(inject)
    finally:
        store.close()
    first = srv.cli("quota", "recalc").stdout
    assert f"an@{DOMAIN}: stored 777 bytes / 9 message(s), actual {true_bytes} bytes / 1 message(s): fixed" in first
    assert "1 account(s) with drift" in first
    assert srv.cli("quota", "recalc").stdout.strip() == "no drift"
    assert srv.cli("quota", "recalc", f"an@{DOMAIN}").stdout.strip() == "no drift"
