"""IMAP4rev1 end to end: the real server (``server`` fixture), real sockets, imaplib/IMAPClient,
mail delivered over SMTP."""

from __future__ import annotations

import base64
import imaplib
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time

import pytest
from imapclient import IMAPClient

pytestmark = pytest.mark.requirement("R-PROTO-1")

PASSWORD = "Matkhau-2024x"
OK, NO, BAD = "OK", "NO", "BAD"


@pytest.fixture(scope="module")
def users(server):
    names = {}
    for short in ("imap1", "imap2", "imap3", "imap4", "imap5"):
        address = f"{short}@{server.domain}"
        server.add_account(address, PASSWORD, name="Nguyễn Văn An")
        names[short] = address
    return names


def login(server, address) -> imaplib.IMAP4:
    m = imaplib.IMAP4(server.host, server.port("imap"), timeout=10)
    m._encoding = "utf-8"
    m.login(address, PASSWORD)
    return m


def deliver(server, to: str, subject: str = "Công văn số 12", body: str = "Xin chào thế giới\r\n") -> bytes:
    msg = (
        f"From: Phòng Tổ chức <tochuc@{server.domain}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body
    ).encode()
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=10) as s:
        s.sendmail(f"tochuc@{server.domain}", [to], msg)
    return msg


class Raw:
    """A line-level client for checking exact reply forms."""

    def __init__(self, server, port_name="imap"):
        self.sock = socket.create_connection((server.host, server.port(port_name)), timeout=5)
        self.greeting = self.read_until(b"\r\n")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        buf = b""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        while marker not in buf and time.monotonic() < deadline:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf

    def cmd(self, line: bytes, tag: bytes) -> bytes:
        self.send(line + b"\r\n")
        return self.read_until(b"\r\n" + tag + b" ") if not line.startswith(tag) else self._tagged(tag)

    def _tagged(self, tag: bytes) -> bytes:
        buf = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            buf += self.sock.recv(65536)
            lines = buf.split(b"\r\n")
            if any(ln.startswith(tag + b" ") for ln in lines):
                return buf
        return buf

    def login(self, address: str) -> None:
        assert self.cmd(b'L1 LOGIN "%s" "%s"' % (address.encode(), PASSWORD.encode()), b"L1").startswith(b"L1 OK")

    def close(self) -> None:
        self.sock.close()


# -- connection, TLS, authentication -------------------------------------------------------------

def test_greeting_and_capabilities_advertise_only_implemented_extensions(server, users):
    raw = Raw(server)
    assert raw.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
    caps = raw.cmd(b"c1 CAPABILITY", b"c1").split(b"\r\n")[0].split()
    for cap in (b"STARTTLS", b"AUTH=PLAIN", b"IDLE", b"UIDPLUS", b"MOVE", b"LITERAL+", b"SASL-IR", b"NAMESPACE", b"UNSELECT"):
        assert cap in caps
    assert b"LOGINDISABLED" not in caps  # loopback with allow_plaintext_auth_on_loopback
    raw.close()


def test_starttls_drops_commands_pipelined_in_plaintext(server, users):
    raw = Raw(server)
    raw.send(b"t1 STARTTLS\r\nt2 LOGIN %s %s\r\n" % (users["imap1"].encode(), b"x"))
    assert raw.read_until(b"t1 OK") .endswith(b"t1 OK Begin TLS negotiation now\r\n")
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    tls = ctx.wrap_socket(raw.sock)
    tls.sendall(b"t3 NOOP\r\n")
    tls.settimeout(5)
    reply = b""
    while b"t3 " not in reply:
        reply += tls.recv(4096)
    assert b"t2" not in reply and reply.startswith(b"t3 OK")
    tls.sendall(b"t4 CAPABILITY\r\n")
    caps = b""
    while b"t4 " not in caps:
        caps += tls.recv(4096)
    assert b"STARTTLS" not in caps and b"AUTH=PLAIN" in caps
    tls.close()


def test_implicit_tls_listener_logs_in(server, users):
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    m = imaplib.IMAP4_SSL(server.host, server.port("imaps"), ssl_context=ctx, timeout=10)
    assert m.login(users["imap1"], PASSWORD)[0] == OK
    m.logout()


def test_wrong_password_is_authenticationfailed(server, users):
    raw = Raw(server)
    assert raw.cmd(b"a1 LOGIN %s wrongpass" % users["imap1"].encode(), b"a1").startswith(b"a1 NO [AUTHENTICATIONFAILED]")
    assert raw.cmd(b"a2 LOGIN nobody@example.gov.vn wrongpass", b"a2").startswith(b"a2 NO [AUTHENTICATIONFAILED]")
    raw.close()


def test_authenticate_plain_with_and_without_initial_response(server, users):
    creds = base64.b64encode(b"\0" + users["imap1"].encode() + b"\0" + PASSWORD.encode())
    raw = Raw(server)
    assert raw.cmd(b"a1 AUTHENTICATE PLAIN " + creds, b"a1").startswith(b"a1 OK")
    raw.close()
    raw = Raw(server)
    raw.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert raw.read_until(b"\r\n") == b"+ \r\n"
    raw.send(creds + b"\r\n")
    assert raw.read_until(b"a1 ").startswith(b"a1 OK")
    raw.close()


# -- folders -------------------------------------------------------------------------------------

def test_list_shows_default_folders_with_special_use(server, users):
    with IMAPClient(server.host, port=server.port("imap"), ssl=False) as c:
        c.login(users["imap1"], PASSWORD)
        folders = {name: flags for flags, _, name in c.list_folders()}
        assert set(folders) >= {"INBOX", "Sent", "Drafts", "Trash", "Junk"}
        assert b"\\Sent" in folders["Sent"] and b"\\Trash" in folders["Trash"] and b"\\HasNoChildren" in folders["INBOX"]


def test_create_rename_delete_vietnamese_folder_names(server, users):
    with IMAPClient(server.host, port=server.port("imap"), ssl=False) as c:
        c.login(users["imap1"], PASSWORD)
        c.create_folder("Công văn/Đến")
        names = {name: flags for flags, _, name in c.list_folders()}
        assert "Công văn/Đến" in names and b"\\HasChildren" in names["Công văn"]
        with pytest.raises(IMAPClient.Error, match="ALREADYEXISTS"):
            c.create_folder("Công văn/Đến")
        c.rename_folder("Công văn/Đến", "Công văn/Đi")
        assert "Công văn/Đi" in {n for _, _, n in c.list_folders()}
        c.delete_folder("Công văn/Đi")
        assert "Công văn/Đi" not in {n for _, _, n in c.list_folders()}
        with pytest.raises(IMAPClient.Error, match="NONEXISTENT"):
            c.select_folder("Không có")
        with pytest.raises(IMAPClient.Error):
            c.delete_folder("INBOX")
        c.subscribe_folder("Sent")
        assert "Sent" in {n for _, _, n in c.list_sub_folders()}


# -- delivery, FETCH, SEARCH ---------------------------------------------------------------------

def test_smtp_delivery_is_read_byte_exact_with_vietnamese_subject(server, users):
    sent = deliver(server, users["imap2"])
    with IMAPClient(server.host, port=server.port("imap"), ssl=False) as c:
        c.login(users["imap2"], PASSWORD)
        c.select_folder("INBOX")
        uid = c.search(["ALL"])[-1]
        data = c.fetch([uid], ["ENVELOPE", "BODY.PEEK[]", "RFC822.SIZE", "FLAGS", "BODYSTRUCTURE"])[uid]
        assert data[b"ENVELOPE"].subject.decode() == "Công văn số 12"
        assert data[b"BODY[]"].endswith(sent) and len(data[b"BODY[]"]) == data[b"RFC822.SIZE"]
        assert b"\\Seen" not in data[b"FLAGS"]
        assert data[b"BODYSTRUCTURE"][0].upper() == b"TEXT"
        header = c.fetch([uid], ["BODY[HEADER.FIELDS (SUBJECT)]"])[uid]
        assert header[b"BODY[HEADER.FIELDS (SUBJECT)]"] == "Subject: Công văn số 12\r\n\r\n".encode()
        assert b"\\Seen" in header[b"FLAGS"]  # implicit \Seen reported with the body


def test_partial_fetch_is_labelled_with_origin_and_sliced(server, users):
    deliver(server, users["imap2"], subject="partial")
    raw = Raw(server)
    raw.login(users["imap2"])
    raw.cmd(b"s1 SELECT INBOX", b"s1")
    reply = raw.cmd(b"f1 FETCH 1 (BODY.PEEK[]<0.5> BODY.PEEK[TEXT]<2.3>)", b"f1")
    assert b"BODY[]<0> {5}\r\n" in reply and b"BODY[TEXT]<2> {3}\r\n" in reply
    assert b"f1 OK" in reply
    raw.close()


def test_search_with_utf8_literal_folding_and_empty_result(server, users):
    deliver(server, users["imap3"], subject="Báo cáo tháng", body="Kế hoạch năm\r\n")
    deliver(server, users["imap3"], subject="Other", body="nothing here\r\n")
    raw = Raw(server)
    raw.login(users["imap3"])
    raw.cmd(b"s1 SELECT INBOX", b"s1")
    word = "tháng".encode()
    raw.send(b"s2 SEARCH CHARSET UTF-8 SUBJECT {%d}\r\n" % len(word))
    assert raw.read_until(b"\r\n").startswith(b"+ ")
    raw.send(word + b"\r\n")
    assert raw.read_until(b"s2 ").startswith(b"* SEARCH 1\r\n")
    assert raw.cmd(b"s3 UID SEARCH BODY ke", b"s3").startswith(b"* SEARCH 1\r\n")  # diacritics folded
    assert raw.cmd(b"s4 SEARCH SUBJECT zzzzzz", b"s4").startswith(b"* SEARCH\r\ns4 OK")
    assert raw.cmd(b"s5 SEARCH CHARSET KOI8-R ALL", b"s5").startswith(b"s5 NO [BADCHARSET")
    assert raw.cmd(b"s6 SEARCH FROBNICATE", b"s6").startswith(b"s6 BAD")
    raw.close()


def test_message_with_8bit_headers_never_drops_the_connection(server, users):
    msg = "From: Trần <t@x.vn>\r\nTo: Lê <l@y.vn>\r\nSubject: Thông báo\r\nContent-Type: text/plain;\r\n\r\nnội dung\r\n".encode()
    with IMAPClient(server.host, port=server.port("imap"), ssl=False) as c:
        c.login(users["imap4"], PASSWORD)
        c.append("Drafts", msg)
        c.select_folder("Drafts")
        uid = c.search(["ALL"])[-1]
        data = c.fetch([uid], ["ENVELOPE", "BODYSTRUCTURE", "BODY.PEEK[HEADER]", "BODY.PEEK[1]"])[uid]
        assert data[b"BODY[HEADER]"] == msg.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        assert data[b"BODY[1]"] == "nội dung\r\n".encode()
        assert data[b"ENVELOPE"].from_[0].name.decode() == "Trần"
        assert c.noop()[0]  # still connected


# -- APPEND, STORE, COPY, MOVE, EXPUNGE ----------------------------------------------------------

def test_append_forms_and_appenduid(server, users):
    m = login(server, users["imap4"])
    typ, data = m.append("INBOX", None, None, b"Subject: a\r\n\r\nx\r\n")
    assert typ == OK and data[0].startswith(b"[APPENDUID ")
    typ, data = m.append("INBOX", "(\\Flagged $Work)", imaplib.Time2Internaldate(1_700_000_000), b"Subject: b\r\n\r\ny\r\n")
    assert typ == OK
    uid = int(data[0].split()[2].rstrip(b"]"))
    m.select("INBOX")
    typ, data = m.uid("FETCH", str(uid), "(FLAGS INTERNALDATE)")
    assert b"\\Flagged" in data[0] and b"$Work" in data[0] and b"14-Nov-2023 22:13:20 +0000" in data[0]
    typ, data = m.append("Nowhere", None, None, b"Subject: c\r\n\r\nz\r\n")
    assert typ == NO and b"TRYCREATE" in data[0]
    m.logout()


def test_append_literal_over_the_limit_is_refused_before_it_is_read(server, users):
    raw = Raw(server)
    raw.login(users["imap4"])
    reply = raw.cmd(b"a1 APPEND INBOX {999999999999}", b"a1")
    assert reply.startswith(b"a1 NO [TOOBIG]")
    assert raw.cmd(b"a2 NOOP", b"a2").startswith(b"a2 OK")
    raw.close()


def test_store_copy_move_and_uid_expunge(server, users):
    m = login(server, users["imap5"])
    for i in range(4):
        m.append("INBOX", None, None, b"Subject: m%d\r\n\r\nbody\r\n" % i)
    m.select("INBOX")
    typ, data = m.store("1:2", "+FLAGS", "(\\Deleted)")
    assert typ == OK and len(data) == 2 and b"\\Deleted" in data[0]
    typ, data = m.store("3", "+FLAGS.SILENT", "(\\Flagged)")
    assert typ == OK and data == [None]
    typ, data = m.copy("3:4", "Trash")
    assert typ == OK and data[0].startswith(b"[COPYUID ")
    typ, data = m.uid("SEARCH", "DELETED")
    deleted = data[0].split()
    typ, data = m.uid("EXPUNGE", deleted[0].decode())
    assert typ == OK and m.untagged_responses.get("EXPUNGE") == [b"1"]
    typ, data = m.uid("MOVE", "1:*", "Junk")
    assert typ == OK
    assert m.untagged_responses.get("EXPUNGE") and m.untagged_responses.get("COPYUID")
    typ, data = m.search(None, "ALL")
    assert data == [b""]
    m.logout()


# -- bad input -----------------------------------------------------------------------------------

def test_bad_input_gets_bad_and_the_session_goes_on(server, users):
    raw = Raw(server)
    assert raw.cmd(b"b1 FROBNICATE", b"b1").startswith(b"b1 BAD")
    assert raw.cmd(b"b2 SELECT INBOX", b"b2").startswith(b"b2 BAD")  # wrong state
    raw.login(users["imap1"])
    raw.cmd(b"s1 SELECT INBOX", b"s1")
    assert raw.cmd(b"b3 FETCH 1:x FLAGS", b"b3").startswith(b"b3 BAD")
    assert raw.cmd(b"b4 FETCH 1 (FLAGS", b"b4").startswith(b"b4 BAD")
    assert raw.cmd(b'b5 LOGIN "unterminated', b"b5").startswith(b"b5 BAD")
    assert raw.cmd(b"b6 " + b"A" * 70000, b"b6").startswith(b"b6 BAD")
    assert raw.cmd(b"b7 NOOP", b"b7").startswith(b"b7 OK")
    raw.close()


# -- several sessions, IDLE ----------------------------------------------------------------------

def test_idle_sees_smtp_delivery_within_a_second(server, users):
    raw = Raw(server)
    raw.login(users["imap2"])
    raw.cmd(b"s1 SELECT INBOX", b"s1")
    raw.send(b"i1 IDLE\r\n")
    assert raw.read_until(b"\r\n") == b"+ idling\r\n"
    started = time.monotonic()
    threading.Thread(target=deliver, args=(server, users["imap2"]), daemon=True).start()
    pushed = raw.read_until(b"EXISTS", timeout=3)
    assert b" EXISTS\r\n" in pushed and time.monotonic() - started < 1.5
    raw.send(b"NOT-DONE\r\n")
    assert raw.read_until(b"\r\n").startswith(b"* BAD")
    raw.send(b"DONE\r\n")
    assert b"i1 OK" in raw.read_until(b"i1 ")
    raw.close()


def _noop_until(raw, wanted: bytes, timeout: float = 5.0) -> bytes:
    """NOOP until its reply carries ``wanted``: another session's change reaches this one within
    a moment, later on a loaded machine (a fixed sleep made this test flaky under load)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = raw.cmd(b"nw NOOP", b"nw")
        if wanted in reply or time.monotonic() > deadline:
            return reply
        time.sleep(0.05)


def test_other_sessions_see_flags_and_expunges_only_when_allowed(server, users):
    deliver(server, users["imap3"], subject="Cờ và xóa")  # message 1 exists when run alone too
    a, b = Raw(server), login(server, users["imap3"])
    a.login(users["imap3"])
    a.cmd(b"s1 SELECT INBOX", b"s1")
    b.select("INBOX")
    b.store("1", "+FLAGS", "(\\Flagged)")
    reply = _noop_until(a, b"\\Flagged")
    assert b"* 1 FETCH (UID " in reply and b"\\Flagged" in reply
    b.store("1", "+FLAGS", "(\\Deleted)")
    b.expunge()
    time.sleep(0.3)  # the expunge has reached session a (on a loaded machine perhaps not yet: then
    # the FETCH proves nothing, but the NOOP below still must report it, and only once)
    during_fetch = a.cmd(b"f1 FETCH 1:* (FLAGS)", b"f1")
    assert b"EXPUNGE" not in during_fetch
    assert _noop_until(a, b"* 1 EXPUNGE").count(b"EXPUNGE") == 1
    a.close()
    b.logout()


# -- real clients --------------------------------------------------------------------------------

MBSYNCRC = """IMAPAccount t
Host {host}
Port {port}
User {user}
Pass {password}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account t

MaildirStore local
Path {root}/
Inbox {root}/INBOX
SubFolders Verbatim

Channel c
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
"""


@pytest.mark.skipif(not shutil.which("mbsync"), reason="isync (mbsync) not installed")
def test_mbsync_pulls_flags_deletes_and_uploads(server, users, tmp_path):
    user = users["imap1"]
    deliver(server, user, subject="mbsync một")
    deliver(server, user, subject="mbsync hai")
    root = tmp_path / "mail"
    root.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(MBSYNCRC.format(host=server.host, port=server.port("imap"), user=user, password=PASSWORD, root=root))

    def sync():
        done = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    sync()
    inbox = sorted((root / "INBOX" / "new").iterdir()) + sorted((root / "INBOX" / "cur").iterdir())
    by_subject = {
        f.read_bytes().split(b"Subject: ")[1].split(b"\n")[0].rstrip(b"\r").decode(): f
        for f in inbox if b"Subject: mbsync" in f.read_bytes()
    }
    assert set(by_subject) == {"mbsync một", "mbsync hai"}
    keep, drop = by_subject["mbsync một"], by_subject["mbsync hai"]
    keep.rename(root / "INBOX" / "cur" / (keep.name.split(":2,")[0] + ":2,FS"))
    drop.rename(root / "INBOX" / "cur" / (drop.name.split(":2,")[0] + ":2,ST"))
    (root / "Drafts" / "new" / "local.1").write_bytes(b"Subject: from mbsync\r\n\r\ndraft body\r\n")
    sync()
    m = login(server, user)
    m.select("INBOX", readonly=True)
    typ, data = m.search(None, "SUBJECT", "mbsync")
    assert len(data[0].split()) == 1
    typ, data = m.fetch(data[0].decode(), "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"\\Flagged" in data[0][0] and b"\\Seen" in data[0][0]
    assert "mbsync một".encode() in data[0][1]
    m.select("Drafts", readonly=True)
    typ, data = m.search(None, "SUBJECT", '"from mbsync"')
    assert len(data[0].split()) == 1
    m.logout()


MUTTRC = """set imap_user="{user}"
set imap_pass="{password}"
set folder="imap://{host}:{port}/"
set spoolfile="+INBOX"
set ssl_starttls=no
set ssl_force_tls=no
set header_cache=""
set message_cachedir=""
set confirmappend=no
set delete=yes
set move=no
set mail_check=0
"""


@pytest.mark.skipif(not (shutil.which("mutt") and shutil.which("script")), reason="mutt or script not installed")
def test_mutt_saves_a_delivered_message_to_trash(server, users, tmp_path):
    user = users["imap5"]
    deliver(server, user, subject="mutt chuyển thư")
    rc = tmp_path / "muttrc"
    rc.write_text(MUTTRC.format(user=user, password=PASSWORD, host=server.host, port=server.port("imap")))
    keys = "<tag-pattern>~s mutt<enter><tag-prefix><save-message>=Trash<enter><sync-mailbox><quit>"
    done = subprocess.run(
        ["script", "-qec", f"mutt -n -F {rc} -e 'push \"{keys}\"'", "/dev/null"],
        capture_output=True, timeout=60, env={"TERM": "xterm", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0
    m = login(server, user)
    m.select("INBOX", readonly=True)
    assert m.search(None, "SUBJECT", "mutt")[1] == [b""]
    m.select("Trash", readonly=True)
    typ, data = m.search(None, "SUBJECT", "mutt")
    assert len(data[0].split()) == 1
    typ, data = m.fetch(data[0].decode(), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert "mutt chuyển thư".encode() in data[0][1]
    m.logout()


def test_body_part_1_of_a_non_multipart_part_is_that_part(server, users):
    """RFC 3501 §6.4.5: a non-multipart part has a part 1, itself; so has a single-part message."""
    address = users["imap5"]
    deliver(server, address, subject="single", body="only text\r\n")
    mixed = (
        f"From: a@{server.domain}\r\nTo: {address}\r\nSubject: mixed\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        "--B\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
        "--B--\r\n"
    ).encode()
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=10) as s:
        s.sendmail(f"a@{server.domain}", [address], mixed)
    with IMAPClient(server.host, port=server.port("imap"), ssl=False) as c:
        c.login(address, PASSWORD)
        c.select_folder("INBOX", readonly=True)
        single = c.search(["SUBJECT", "single"])[-1]
        multi = c.search(["SUBJECT", "mixed"])[-1]
        assert c.fetch([single], ["BODY.PEEK[1]"])[single][b"BODY[1]"] == b"only text\r\n"
        data = c.fetch([multi], ["BODY.PEEK[2]", "BODY.PEEK[2.1]", "BODY.PEEK[1.1]", "BODY.PEEK[2.2]"])[multi]
        assert data[b"BODY[2]"] == data[b"BODY[2.1]"] == b"JVBERi0xLjQK"
        assert data[b"BODY[1.1]"] == b"hello"
        assert data[b"BODY[2.2]"] in (b"", None)


def test_lsub_star_lists_only_subscribed_names_percent_shows_noselect_parent(server, users):
    """RFC 3501 §6.3.9: an unsubscribed parent of a subscribed name is listed (\\Noselect) only
    for a "%" match; "*" lists the subscribed names alone."""
    raw = Raw(server)
    raw.login(users["imap4"])
    for n, line in enumerate((b"CREATE Lsubp", b"CREATE Lsubp/child", b"UNSUBSCRIBE Lsubp", b"SUBSCRIBE Lsubp/child")):
        raw.cmd(b"c%d " % n + line, b"c%d" % n)
    star = raw.cmd(b'l1 LSUB "" "Lsub*"', b"l1")
    assert b'"Lsubp/child"' in star and b'"Lsubp"\r\n' not in star
    percent = raw.cmd(b'l2 LSUB "" "Lsub%"', b"l2")
    assert b'* LSUB (\\Noselect) "/" "Lsubp"' in percent or b"* LSUB (\\Noselect) \"/\" Lsubp" in percent
    raw.close()


def test_bare_lf_mail_is_served_with_crlf_lines_and_its_served_size(server, users):
    """RFC 3501 §4.3 / RFC 1939: mail sent over SMTP or APPENDed with bare LF line ends is read
    over IMAP and POP3 with CRLF lines, and RFC822.SIZE is the size served."""
    address = users["imap3"]
    body = "Line one\nLine two\n\n--\nend\r\n"  # a last CRLF: smtplib would add one
    sent = f"From: a@{server.domain}\nTo: {address}\nSubject: bare-lf-smtp\n\n{body}".encode()
    with smtplib.SMTP(server.host, server.port("smtp"), timeout=10) as s:
        s.sendmail(f"a@{server.domain}", [address], sent)  # bytes: smtplib leaves the LFs alone
    appended = f"From: a@{server.domain}\nSubject: bare-lf-append\n\n{body}".encode()
    raw = Raw(server)
    raw.login(address)
    raw.send(b"a1 APPEND INBOX {%d}\r\n" % len(appended))
    assert raw.read_until(b"\r\n").startswith(b"+")
    raw.send(appended + b"\r\n")
    assert b"a1 OK" in raw.read_until(b"a1 ")
    raw.close()
    with IMAPClient(server.host, port=server.port("imap"), ssl=False) as c:
        c.login(address, PASSWORD)
        c.select_folder("INBOX", readonly=True)
        for subject, original in (("bare-lf-smtp", sent), ("bare-lf-append", appended)):
            uid = c.search(["SUBJECT", subject])[-1]
            data = c.fetch([uid], ["BODY.PEEK[]", "RFC822.SIZE", "BODY.PEEK[TEXT]"])[uid]
            served = data[b"BODY[]"]
            assert b"\n" not in served.replace(b"\r\n", b""), subject
            assert served.endswith(original.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")), subject
            assert data[b"RFC822.SIZE"] == len(served), subject
            assert data[b"BODY[TEXT]"] == b"Line one\r\nLine two\r\n\r\n--\r\nend\r\n", subject
    pop = socket.create_connection((server.host, server.port("pop3")), timeout=30)
    lines = pop.makefile("rb")
    lines.readline()
    for command in (b"USER " + address.encode(), b"PASS " + PASSWORD.encode(), b"STAT"):
        pop.sendall(command + b"\r\n")
        status = lines.readline()
        assert status.startswith(b"+OK"), status
    count = int(status.split()[1])
    for number in range(1, count + 1):
        pop.sendall(b"RETR %d\r\n" % number)
        assert lines.readline().startswith(b"+OK")
        message = b""
        while (line := lines.readline()) != b".\r\n":
            assert line and line.endswith(b"\r\n") and b"\n" not in line[:-2], line
            message += line
    pop.sendall(b"QUIT\r\n")
    lines.close()
    pop.close()


def test_subscriptions_are_a_list_of_names(server, users):
    """RFC 3501 §6.3.3-6.3.9 and RFC 5258: CREATE does not subscribe, DELETE and RENAME leave the
    subscriptions as they are, and a subscribed name whose folder is gone is listed \\NonExistent."""
    raw = Raw(server)
    raw.login(users["imap1"])

    def cmd(tag: bytes, line: bytes) -> bytes:
        reply = raw.cmd(tag + b" " + line, tag)
        assert b"\r\n" + tag + b" OK" in b"\r\n" + reply, reply
        return reply

    default = cmd(b"l0", b'LSUB "" "*"')
    for folder in (b"INBOX", b"Sent", b"Drafts", b"Trash", b"Junk"):
        assert b'"/" ' + folder + b"\r\n" in default or b'"/" "' + folder + b'"\r\n' in default, default
    cmd(b"c1", b"CREATE Subtest")
    cmd(b"c2", b"CREATE Subtest2")
    assert b"Subtest" not in cmd(b"l1", b'LSUB "" "Sub*"')
    assert b"\\Subscribed" not in cmd(b"l2", b'LIST "" "Sub*" RETURN (SUBSCRIBED)')
    cmd(b"s1", b"SUBSCRIBE Subtest")
    cmd(b"s2", b"SUBSCRIBE Subtest2")
    cmd(b"r1", b"RENAME Subtest Subtest-renamed")
    cmd(b"d1", b"DELETE Subtest2")
    lsub = cmd(b"l3", b'LSUB "" "Sub*"')
    assert b'* LSUB (\\NonExistent) "/" "Subtest"\r\n' in lsub, lsub  # renamed away
    assert b'* LSUB (\\NonExistent) "/" "Subtest2"\r\n' in lsub, lsub  # deleted
    assert b"renamed" not in lsub
    listed = cmd(b"l4", b'LIST (SUBSCRIBED) "" "Sub*"')
    assert b'* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" "Subtest"\r\n' in listed, listed
    assert b'* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" "Subtest2"\r\n' in listed, listed
    assert b"renamed" not in listed
    cmd(b"u1", b"UNSUBSCRIBE Subtest2")  # the folder is gone; the name was still subscribed
    assert b"Subtest2" not in cmd(b"l5", b'LSUB "" "Sub*"')
    raw.close()
