"""The classified-document guard on submission, end to end (R-SEC-3): a real ``serve``, smtplib
submitting over 587 with STARTTLS, the review queue through the real CLI.

Refused: ``550 5.7.1`` in Vietnamese then English naming the marking and the part; nothing is
delivered; the attempt is in the audit log; the sender's unit (mailbox, head), the sender and the
postmaster get a notice in Vietnamese then English. Held: ``250`` with the queue's number,
nothing delivered until ``queue release``; ``queue delete --held`` drops it. An encrypted PDF
is held by default (``classified.unreadable``)."""

from __future__ import annotations

import smtplib

import pytest

from tests.classified_docs import docx, letter, message, pdf, zip_of
from tests.conftest import wait_until

pytestmark = pytest.mark.requirement("R-SEC-3")

PASSWORD = "Mk-2026-an!"
S250, S550 = 250, 550


def addr(srv, local: str) -> str:
    return f"{local}@{srv.domain}"


def setup_people(srv) -> dict[str, str]:
    people = {k: addr(srv, k) for k in ("annv", "binhtt", "truongphong", "vanphong", "postmaster")}
    for key in ("annv", "binhtt", "truongphong", "postmaster"):
        srv.add_account(people[key], PASSWORD, name="Nguyễn Văn An")
    srv.cli("unit", "add", "Văn phòng", "--code", "vp", "--address", people["vanphong"], "--head", people["truongphong"],
            "--password", PASSWORD)
    store = srv.open_store()
    try:
        store.org.set_profile(store.accounts.get_account(people["annv"]).id, unit_id=store.org.get_unit("vp").id)
    finally:
        store.close()
    return people


def inbox(srv, address: str) -> list[bytes]:
    store = srv.open_store()
    try:
        folder = store.folders.get_folder(store.accounts.get_account(address).id, "INBOX")
        uids = store.messages.open_view(folder.id, claim_recent=False).uids
        return [store.messages.read_blob(m.blob) for m in store.messages.fetch(folder.id, uids)]
    finally:
        store.close()


def audit(srv, address: str) -> list:
    store = srv.open_store()
    try:
        return store.org.audit_log(store.accounts.get_account(address).id)
    finally:
        store.close()


def send(srv, sender: str, to: str, raw: bytes) -> tuple[int, str]:
    with smtplib.SMTP(srv.host, srv.port("submission"), local_hostname="client.test", timeout=60) as c:
        c.starttls()
        c.ehlo("client.test")
        c.login(sender, PASSWORD)
        assert c.mail(sender)[0] == S250
        assert c.rcpt(to)[0] == S250
        code, text = c.data(raw)
    return code, text.decode("utf-8", "replace")


def notices(srv, address: str) -> list[str]:
    import email
    from email import policy

    return [str(email.message_from_bytes(m, policy=policy.default)["Subject"]) for m in inbox(srv, address)
            if b"classified@" in m]  # fmt: skip


STAMPED_PDF = pdf(letter("stamped/ke-hoach-toi-mat.txt").splitlines())


@pytest.fixture
def refusing(make_server):
    srv = make_server(start=False)
    people = setup_people(srv)
    srv.start()
    return srv, people


def test_stamped_attachment_is_refused_audited_and_the_unit_told(refusing):
    srv, p = refusing
    raw = message(p["annv"], p["binhtt"], "Kế hoạch tháng 3", "Kính gửi anh Bình, em gửi kế hoạch.",
                  {"ke-hoach.pdf": STAMPED_PDF})
    code, text = send(srv, p["annv"], p["binhtt"], raw)
    assert code == S550
    lines = text.splitlines()
    # Vietnamese first (without diacritics: the client did not ask for SMTPUTF8), then English
    assert lines[0].startswith("5.7.1 Thu bi tu choi: co dau do mat \"Toi mat\"") and "ke-hoach.pdf" in lines[0]
    assert lines[1].startswith('5.7.1 Message refused: classification marking "Toi mat" found in') and "ke-hoach.pdf" in lines[1]
    assert inbox(srv, p["binhtt"]) == []
    entry = next(e for e in audit(srv, p["annv"]) if e.action == "classified-refuse")
    assert entry.actor == p["annv"] and "Tối mật" in entry.detail and "ke-hoach.pdf" in entry.detail
    for reader in ("truongphong", "vanphong", "annv", "postmaster"):
        subjects = wait_until(lambda: notices(srv, p[reader]), what=f"notice to {reader}")
        assert subjects[0].startswith("Thư có thể chứa tài liệu mật từ") and "Possible classified document" in subjects[0]
    body = inbox(srv, p["truongphong"])[-1]
    import email
    from email import policy

    text = email.message_from_bytes(body, policy=policy.default).get_body().get_content()
    assert text.index("Thư đã bị từ chối") < text.index("The message was refused")


def test_stamp_in_subject_docx_and_zip_refused_ordinary_letters_delivered(refusing):
    srv, p = refusing
    cases = [
        ("[MẬT] Tờ trình nhân sự", None, "tieu de / subject"),
        ("Tờ trình", {"to-trinh.docx": docx(["Kính gửi"], header="MẬT")}, "to-trinh.docx"),
        ("Hồ sơ", {"ho-so.zip": zip_of({"bao-cao.docx": docx(["Độ mật: Tuyệt mật"])})}, "bao-cao.docx"),
    ]
    for subject, attachments, part in cases:
        code, text = send(srv, p["annv"], p["binhtt"], message(p["annv"], p["binhtt"], subject, "Kính gửi anh.", attachments))
        assert code == S550
        assert part in text.splitlines()[0]
    clean = letter("clean/doi-mat-khau.txt")
    for subject, attachments in [("Mật khẩu mới", None), ("Công văn về bí mật thư tín",
                                 {"cong-van.pdf": pdf(letter("clean/bi-mat-thu-tin.txt").splitlines())})]:
        code, _ = send(srv, p["annv"], p["binhtt"], message(p["annv"], p["binhtt"], subject, clean, attachments))
        assert code == S250
    assert len(inbox(srv, p["binhtt"])) == 2


def test_held_message_waits_for_the_operator(make_server):
    srv = make_server({"classified": {"action": "hold"}}, start=False)
    p = setup_people(srv)
    srv.start()
    raw = message(p["annv"], p["binhtt"], "Kế hoạch", "Kính gửi anh.", {"ke-hoach.pdf": STAMPED_PDF})
    code, text = send(srv, p["annv"], p["binhtt"], raw)
    assert code == S250 and "held for a classification review" in text
    listed = srv.cli("queue", "held").stdout
    line = next(x for x in listed.splitlines() if p["annv"] in x)
    held_id = line.split("\t")[0]
    assert "stamped" in line and "ke-hoach.pdf" in line and "Tối mật" in line
    shown = srv.cli("queue", "held", held_id).stdout
    assert f"recipient (local): {p['binhtt']}" in shown and "Subject: " in shown
    assert inbox(srv, p["binhtt"]) == []
    assert any(e.action == "classified-hold" and f"held={held_id}" in e.detail for e in audit(srv, p["annv"]))
    wait_until(lambda: notices(srv, p["truongphong"]), what="notice of the hold to the unit head")
    released = srv.cli("queue", "release", held_id).stdout
    assert "1 delivered" in released
    delivered = inbox(srv, p["binhtt"])
    assert len(delivered) == 1 and b"ke-hoach.pdf" in delivered[0] and b"Received:" in delivered[0]
    assert any(e.action == "classified-release" for e in audit(srv, p["annv"]))
    assert "no held messages" in srv.cli("queue", "held").stdout

    # an encrypted PDF cannot be checked: held by default (classified.unreadable)
    locked = message(p["annv"], p["binhtt"], "Báo cáo", "Gửi anh.", {"bao-cao.pdf": pdf(["abc"], password="khoa")})
    code, text = send(srv, p["annv"], p["binhtt"], locked)
    assert code == S250 and "held" in text
    line = next(x for x in srv.cli("queue", "held").stdout.splitlines() if "bao-cao.pdf" in x)
    assert "unreadable" in line and "encrypted PDF" in line
    held_id = line.split("\t")[0]
    assert srv.cli("queue", "delete", "--held", held_id).stdout.strip() == f"deleted held message {held_id}"
    assert "no held messages" in srv.cli("queue", "held").stdout
    assert len(inbox(srv, p["binhtt"])) == 1
    missing = srv.cli("queue", "release", held_id, check=False)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
