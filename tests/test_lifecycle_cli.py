"""Account lifecycle commands end to end (R-LIFE-1..5, R-PASS-1/3): `lifecycle run` at each
profile's deadlines (one second before, and at), dry runs, idempotence, the unit's notice, and
`account revoke` refusing logins and mail over real sockets. Real CLI processes, SQLite and
PostgreSQL (the make_server fixture); time is `--now`, never a sleep."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import imaplib
import poplib
import re
import smtplib
import ssl

import pytest

from mailserver.policy.lifecycle import add_months

pytestmark = pytest.mark.requirement("R-LIFE-1", "R-LIFE-2", "R-LIFE-3", "R-LIFE-4", "R-LIFE-5", "R-PASS-1", "R-PASS-3")

SECOND = dt.timedelta(seconds=1)
PASSWORD = "Mat-khau-2024"  # all four classes: every profile accepts it; ASCII for smtplib's AUTH
EXIT_REFUSED = 1
S550_DISABLED = (550, b"5.2.1")


def created_at(srv, address: str) -> dt.datetime:
    store = srv.open_store()
    try:
        return store.accounts.get_account(address).created_at
    finally:
        store.close()


def state(srv, address: str) -> str:
    store = srv.open_store()
    try:
        return store.accounts.get_account(address).state.value
    finally:
        store.close()


def run(srv, when: dt.datetime, *extra: str) -> str:
    return srv.cli("lifecycle", "run", "--now", when.isoformat(), *extra).stdout


def line_for(output: str, address: str) -> str | None:
    found = [line for line in output.splitlines() if line.startswith(address + "\t")]
    assert len(found) <= 1, output
    return found[0] if found else None


def expect(output: str, address: str, before: str, after: str, rule: str, due: dt.datetime) -> str:
    line = line_for(output, address)
    assert line is not None, output
    fields = line.split("\t")
    assert fields[1:3] == [f"{before} -> {after}", rule], line
    assert dt.datetime.fromisoformat(fields[3].removeprefix("due ")) == due.replace(microsecond=0), line
    return line


def refused_with_one_line(result, text: str) -> None:
    assert result.returncode == EXIT_REFUSED, result
    assert text in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def addr(srv, local: str) -> str:
    return f"{local}@{srv.domain}"


def put_in_unit(srv, address: str, unit_code: str) -> None:

    store = srv.open_store()
    try:
        org = store.org
        org.set_profile(store.accounts.get_account(address).id, unit_id=org.get_unit(unit_code).id)
    finally:
        store.close()


def inbox_messages(srv, address: str) -> list[bytes]:
    store = srv.open_store()
    try:
        folder = store.folders.get_folder(store.accounts.get_account(address).id, "INBOX")
        view = store.messages.open_view(folder.id, claim_recent=False)
        return [store.messages.read_blob(m.blob) for m in store.messages.fetch(folder.id, view.uids)]
    finally:
        store.close()


# -- lamdong (R-LIFE-3): 3 months without access → revoked, the unit told ----------------------------

def test_lamdong_revokes_after_3_months_unused_and_notifies_the_unit(make_server):
    srv = make_server({"profile": "lamdong"}, start=False)
    head, unit, person = addr(srv, "binhtt"), addr(srv, "vanphong"), addr(srv, "annv")
    srv.add_account(head, PASSWORD, name="Trần Thị Bình")
    srv.cli("unit", "add", "Văn phòng", "--code", "vp", "--address", unit, "--head", head)
    for kept in (head, unit):  # the notice's readers stay out of the inactivity rule
        srv.cli("account", "exempt", kept)
    srv.cli("account", "add", "Nguyễn Văn An", "--address", person, "--password", PASSWORD)
    put_in_unit(srv, person, "vp")
    due = add_months(created_at(srv, person), 3)

    assert line_for(run(srv, due - SECOND), person) is None
    preview = run(srv, due, "--dry-run")
    expect(preview, person, "must_change_password", "revoked", "inactive", due)
    assert f"would notify {unit}, {head}" in preview and "would change 1 account(s)" in preview
    assert state(srv, person) == "must_change_password" and inbox_messages(srv, unit) == []

    done = run(srv, due)
    expect(done, person, "must_change_password", "revoked", "inactive", due)
    assert f"notified {unit}, {head}" in done and "changed 1 account(s)" in done
    assert state(srv, person) == "revoked"
    assert "changed 0 account(s)" in run(srv, due) and "changed 0 account(s)" in run(srv, add_months(due, 12))

    [raw_unit], [raw_head] = inbox_messages(srv, unit), inbox_messages(srv, head)
    head_part = raw_unit.split(b"\r\n\r\n", 1)[0]
    assert head_part.isascii() and b"\r\nSubject: =?UTF-8?B?" in head_part  # RFC 2047 UTF-8 words
    msg = email.message_from_bytes(raw_unit, policy=email.policy.default)
    assert msg["Subject"] == f"Tài khoản {person} đã bị thu hồi / Account {person} revoked"
    assert msg["To"].addresses[0].addr_spec == unit and msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_content().replace("\r\n", "\n")
    vietnamese, english = body.split("\n-----\n")
    assert f"Tài khoản thư điện tử {person} (Nguyễn Văn An) đã bị thu hồi" in vietnamese
    assert "Kính gửi: Văn phòng" in vietnamese and "không được truy cập trong thời hạn quy định" in vietnamese
    assert f"The mail account {person} (Nguyễn Văn An) has been revoked" in english
    assert email.message_from_bytes(raw_head, policy=email.policy.default)["To"].addresses[0].addr_spec == head


# -- most (R-LIFE-4): 6 months → locked, 12 → revoked; leavers 6 months after notice, 12 after leaving --

def test_most_locks_at_6_months_revokes_at_12_and_revokes_leavers(make_server):
    srv = make_server({"profile": "most"}, start=False)
    idle, noticed, left = addr(srv, "annv"), addr(srv, "binhtt"), addr(srv, "cuonglv")
    for a in (idle, noticed, left):
        srv.add_account(a, PASSWORD)
    for a in (noticed, left):
        srv.cli("account", "exempt", a)  # leaving rules still apply: only the idle clock stops
    c_idle = created_at(srv, idle)
    notice = created_at(srv, noticed) + dt.timedelta(days=1)
    left_on = created_at(srv, left)
    shown = srv.cli("account", "leave", noticed, "--notice", notice.isoformat()).stdout
    assert f"from {add_months(notice, 6).astimezone().isoformat(timespec='seconds')}" in shown
    srv.cli("account", "leave", left, "--left", left_on.isoformat())

    lock, revoke = add_months(c_idle, 6), add_months(c_idle, 12)
    assert line_for(run(srv, lock - SECOND), idle) is None
    expect(run(srv, lock), idle, "active", "locked", "inactive", lock)
    leaver_due = add_months(notice, 6)
    assert line_for(run(srv, leaver_due - SECOND), noticed) is None
    expect(run(srv, leaver_due), noticed, "active", "revoked", "notice", leaver_due)
    assert line_for(run(srv, revoke - SECOND), idle) is None
    expect(run(srv, revoke), idle, "locked", "revoked", "inactive", revoke)
    left_due = add_months(left_on, 12)
    assert line_for(run(srv, left_due - SECOND), left) is None
    expect(run(srv, left_due), left, "active", "revoked", "left_without_notice", left_due)
    assert "changed 0 account(s)" in run(srv, left_due)
    assert [state(srv, a) for a in (idle, noticed, left)] == ["revoked"] * 3


# -- molisa (R-LIFE-2, R-PASS-1): revoked 2 days after notice; initial password changed within 24 h --

def test_molisa_revokes_2_days_after_notice_and_locks_an_unchanged_initial_password(make_server):
    srv = make_server({"profile": "molisa"}, start=False)
    leaver, newcomer = addr(srv, "annv"), addr(srv, "binhtt")
    srv.add_account(leaver, PASSWORD)
    srv.cli("account", "add", "Trần Thị Bình", "--address", newcomer, "--password", PASSWORD)
    notice = created_at(srv, leaver)
    srv.cli("account", "leave", leaver, "--notice", notice.isoformat())

    initial_due = created_at(srv, newcomer) + dt.timedelta(hours=24)
    assert line_for(run(srv, initial_due - SECOND), newcomer) is None
    expect(run(srv, initial_due), newcomer, "must_change_password", "locked", "initial_password_not_changed",
           initial_due)
    notice_due = notice + dt.timedelta(days=2)
    assert line_for(run(srv, notice_due - SECOND), leaver) is None
    expect(run(srv, notice_due), leaver, "active", "revoked", "notice", notice_due)
    # Re-issued: the notice is forgotten, so the next run leaves it alone.
    reissued = srv.cli("account", "reissue", leaver, "--password", PASSWORD, "--active").stdout
    assert "state: active" in reissued and "password:" not in reissued
    assert line_for(run(srv, notice_due + dt.timedelta(days=30)), leaver) is None


# -- hcm-q4 (R-LIFE-5, R-PASS-3): 3 months → locked, 6 → deleted; unlock only 5 days after -----------

def test_hcm_q4_locks_at_3_months_deletes_at_6_and_waits_5_days_to_unlock(make_server):
    from config.loader import load_settings
    from mailserver.accounts.lifecycle import unlock_refusal

    srv = make_server({"profile": "hcm-q4"}, start=False)
    idle, newcomer = addr(srv, "annv"), addr(srv, "binhtt")
    srv.add_account(idle, PASSWORD)
    srv.cli("account", "add", "Trần Thị Bình", "--address", newcomer, "--password", PASSWORD)
    store = srv.open_store()
    try:  # the newcomer logs in a day later and keeps the initial password
        first_login = created_at(srv, newcomer) + dt.timedelta(days=1)
        store.accounts.record_login(store.accounts.get_account(newcomer).id, first_login)
    finally:
        store.close()

    grace = first_login + dt.timedelta(hours=1)
    assert line_for(run(srv, grace - SECOND), newcomer) is None
    expect(run(srv, grace), newcomer, "must_change_password", "locked", "initial_password_not_changed", grace)
    refused_with_one_line(srv.cli("account", "unlock", newcomer, check=False), "R-PASS-3")
    store = srv.open_store()
    try:
        settings, account_id = load_settings(srv.config_path), store.accounts.get_account(newcomer).id
        assert unlock_refusal(store, settings, account_id, grace + dt.timedelta(days=5) - SECOND) is not None
        assert unlock_refusal(store, settings, account_id, grace + dt.timedelta(days=5)) is None
    finally:
        store.close()

    c_idle = created_at(srv, idle)
    lock, delete = add_months(c_idle, 3), add_months(c_idle, 6)
    assert line_for(run(srv, lock - SECOND), idle) is None
    expect(run(srv, lock), idle, "active", "locked", "inactive", lock)
    assert line_for(run(srv, delete - SECOND), idle) is None
    expect(run(srv, delete), idle, "locked", "deleted", "inactive", delete)
    refused_with_one_line(srv.cli("account", "revoke", idle, check=False), "already deleted")
    # A login restarts the idle clock: the newcomer, locked since, is deleted 6 months after it.
    gone = add_months(first_login, 6)
    assert line_for(run(srv, gone - SECOND), newcomer) is None
    expect(run(srv, gone), newcomer, "locked", "deleted", "inactive", gone)
    assert "changed 0 account(s)" in run(srv, gone)


# -- revoke over real sockets ------------------------------------------------------------------------

def _client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the test server's certificate is self-signed
    return ctx


def test_a_revoked_account_cannot_log_in_or_receive_and_keeps_its_mail(make_server):

    srv = make_server()
    person = addr(srv, "annv")
    srv.add_account(person, PASSWORD)
    with smtplib.SMTP(srv.host, srv.port("smtp"), timeout=10) as s:
        s.sendmail(f"tochuc@{srv.domain}", [person], "Subject: Công văn\r\n\r\nNội dung.\r\n".encode())

    refused_with_one_line(srv.cli("account", "revoke", addr(srv, "nobody"), check=False), "no account")
    assert srv.cli("account", "revoke", person, "--reason", "Nghỉ hưu từ 01/12/2026").stdout == f"{person}: revoked\n"
    refused_with_one_line(srv.cli("account", "revoke", person, check=False), "already revoked")

    imap = imaplib.IMAP4(srv.host, srv.port("imap"), timeout=10)
    with pytest.raises(imaplib.IMAP4.error):
        imap.login(person, PASSWORD)
    imap.logout()
    pop = poplib.POP3(srv.host, srv.port("pop3"), timeout=10)
    pop.user(person)
    with pytest.raises(poplib.error_proto):
        pop.pass_(PASSWORD)
    pop.quit()
    with smtplib.SMTP(srv.host, srv.port("submission"), timeout=10) as s:
        s.starttls(context=_client_tls())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(person, PASSWORD)
    with smtplib.SMTP(srv.host, srv.port("smtp"), timeout=10) as s:
        s.ehlo("client.test")
        s.mail(f"tochuc@{srv.domain}")
        code, text = s.rcpt(person)
        assert (code, text[:5]) == S550_DISABLED

    store = srv.open_store()
    try:
        account = store.accounts.get_account(person)
        assert account.state.value == "revoked" and account.used_messages == 1  # mail kept
        [entry] = [e for e in store.org.audit_log(account.id) if e.action == "revoke"]
        assert entry.actor == "operator" and entry.detail == "Nghỉ hưu từ 01/12/2026"
    finally:
        store.close()

    srv.cli("account", "reissue", person, "--password", PASSWORD, "--active")
    imap = imaplib.IMAP4(srv.host, srv.port("imap"), timeout=10)
    imap.login(person, PASSWORD)
    assert imap.select("INBOX") == ("OK", [b"1"])
    imap.logout()


# -- schema and configuration ------------------------------------------------------------------------

def test_db_upgrade_adds_the_lifecycle_table_to_an_existing_database(make_server):
    from alembic import command
    from sqlalchemy import create_engine

    from storage.engine import normalise_url
    from storage.migrate import _config

    srv = make_server(start=False)
    cfg = _config(srv.db_url)
    engine = create_engine(normalise_url(srv.db_url))
    try:
        with engine.begin() as conn:  # back to the schema before this feature
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "lifecycle@-1")
    finally:
        engine.dispose()
    assert srv.cli("db", "status", check=False).returncode == EXIT_REFUSED
    refused_with_one_line(srv.cli("lifecycle", "run", check=False), "mailserver db upgrade")
    srv.add_account(addr(srv, "annv"), PASSWORD)  # the accounts table is untouched by the feature
    srv.cli("db", "upgrade")
    assert re.search(r"0007_lifecycle", srv.cli("db", "status").stdout)
    srv.cli("account", "leave", addr(srv, "annv"))
    assert "changed 0 account(s) (profile none)" in srv.cli("lifecycle", "run").stdout


def test_the_daily_job_runs_only_when_run_at_is_set(tmp_path):
    import asyncio

    from config.loader import load_settings
    from config.settings import Settings
    from mailserver.accounts.lifecycle import LifecycleJob

    path = tmp_path / "mailserver.yaml"
    path.write_text("lifecycle: {run_at: null}\n")
    off = load_settings(path)
    assert off.lifecycle.run_at is None and Settings().lifecycle.run_at is None
    loop = asyncio.new_event_loop()
    try:
        assert LifecycleJob(loop, off, store=None).start().task is None  # type: ignore[arg-type]
        on = load_settings(path, {"lifecycle.run_at": "03:15"})
        job = LifecycleJob(loop, on, store=None).start()  # type: ignore[arg-type]
        assert job.task is not None
        job.cancel()
        loop.run_until_complete(asyncio.gather(job.task, return_exceptions=True))
    finally:
        loop.close()
