"""`account rename`: the new address is the account's, mail to the old one still arrives until
accounts.rename_alias_days have passed (then `lifecycle run` removes it), everything else stays;
audited. Over real SMTP and IMAP; time is `--now`, never a sleep."""

from __future__ import annotations

import datetime as dt
import imaplib
import smtplib

PW = "Mk!12345678x"
S550 = 550


def _deliver(srv, rcpt: str) -> int:
    with smtplib.SMTP(srv.host, srv.port("smtp"), timeout=10) as s:
        s.ehlo("client.test")
        s.mail("sender@other.example")
        code, _ = s.rcpt(rcpt)
        if code == 250:
            s.data(b"Subject: test\r\n\r\nbody\r\n")
        else:
            s.rset()
        return code


def test_rename_keeps_the_old_address_for_a_while(make_server):
    srv = make_server({"accounts": {"rename_alias_days": 30}})
    old, new = f"nguyenvana@{srv.domain}", f"annv@{srv.domain}"
    srv.add_account(old, PW)
    assert _deliver(srv, old) == 250
    out = srv.cli("account", "rename", old, new).stdout
    assert out.startswith(f"{old} -> {new} (old address kept until ")
    assert _deliver(srv, old) == 250 and _deliver(srv, new) == 250
    imap = imaplib.IMAP4(srv.host, srv.port("imap"), timeout=10)
    try:
        imap.login(new, PW)
        assert imap.select("INBOX") == ("OK", [b"3"])
    finally:
        imap.logout()
    assert "rename_alias_expired" not in srv.cli("lifecycle", "run", "--now", (dt.datetime.now(dt.UTC) + dt.timedelta(days=29)).isoformat()).stdout
    expired = srv.cli("lifecycle", "run", "--now", (dt.datetime.now(dt.UTC) + dt.timedelta(days=31)).isoformat()).stdout
    assert f"{old}\talias -> removed\trename_alias_expired" in expired
    assert _deliver(srv, old) == S550 and _deliver(srv, new) == 250
    store = srv.open_store()
    try:
        account = store.accounts.get_account(new)
        actions = [(e.action, e.detail.split(";")[0]) for e in store.org.audit_log(account.id)]
    finally:
        store.close()
    assert ("rename", f"{old} -> {new}") in actions and ("alias-expired", old) in actions


def test_rename_refusals_and_no_alias(make_server):
    srv = make_server(start=False)
    a, b = f"a@{srv.domain}", f"b@{srv.domain}"
    srv.add_account(a, PW)
    srv.add_account(b, PW)
    taken = srv.cli("account", "rename", a, b, check=False)
    assert taken.returncode == 1 and "is taken" in taken.stderr
    assert srv.cli("account", "rename", a, f"c@{srv.domain}", "--keep-old-days", "0").stdout == f"{a} -> c@{srv.domain} (old address not kept)\n"
    gone = srv.cli("account", "show", a, check=False)
    assert gone.returncode == 1
