"""Group mailboxes over SMTP against the real server (R-BOX-4): a 1,000-member group gets one
stored body and one copy per member; an empty group and a refused sender are refused at RCPT.

The SMTP side calls ``Groups.expand_accounts`` / ``may_send_to_group`` at RCPT (smtp/pipeline/
checks/group_expand.py); mailserver/app.py gives start_smtp ``groups=store.org``.
Store-level fan-out: test_org.py.
"""

from __future__ import annotations

import smtplib

import pytest
from sqlalchemy import func, select

from storage import models as m
from storage.api import AccountState
from storage.api import NewPerson, SendPolicy
from tests.conftest import BACKENDS, Server

pytestmark = pytest.mark.requirement("R-BOX-4")

MEMBERS = 1000


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory):
    s = Server(tmp_path_factory.mktemp(f"fanout-{request.param}"), request.param)
    try:
        store = s.open_store()
        try:
            org = store.org
            people = [NewPerson(f"tv{i:04d}@{s.domain}", f"Thành viên {i}", "x", None, state=AccountState.ACTIVE)
                      for i in range(MEMBERS)]
            members = org.create_people(people)
            big = org.add_group(f"toan-co-quan@{s.domain}", "Toàn cơ quan", send_policy=SendPolicy.ANYONE)
            org.add_members(big.account.id, [a.id for a in members])
            org.add_group(f"trong@{s.domain}", "Nhóm trống", send_policy=SendPolicy.ANYONE)
            closed = org.add_group(f"kin@{s.domain}", "Nhóm kín", send_policy=SendPolicy.MEMBERS)
            org.add_members(closed.account.id, [members[0].id])
        finally:
            store.close()
        s.start()
        yield s
    finally:
        s.destroy()


def _send(server, rcpt: str, sender: str = "vanthu@other.gov.vn") -> None:
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=120) as client:
        client.sendmail(sender, [rcpt], f"From: {sender}\r\nTo: {rcpt}\r\nSubject: hop\r\n\r\nbody\r\n".encode())


def test_message_to_a_1000_member_group_reaches_every_member_once_with_one_body(server):
    _send(server, f"toan-co-quan@{server.domain}")
    store = server.open_store()
    try:
        org = store.org
        ids = org.expand_recipients(f"toan-co-quan@{server.domain}")
        assert len(ids) == MEMBERS
        assert all(store.accounts.get_account_by_id(i).used_messages == 1 for i in ids)
        assert store.accounts.get_account(f"toan-co-quan@{server.domain}").used_messages == 0
        with store.core.reading() as conn:
            shas = set(conn.scalars(select(m.Message.blob_sha)))
            assert len(shas) == 1 and conn.scalar(select(func.count()).select_from(m.Message)) == MEMBERS
    finally:
        store.close()


def test_group_without_members_is_refused_at_rcpt(server):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
        _send(server, f"trong@{server.domain}")
    assert list(err.value.recipients.values())[0][0] == 550


def test_sender_outside_a_members_only_group_is_refused_at_rcpt(server):
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        _send(server, f"kin@{server.domain}", sender=f"tv0999@{server.domain}")
