"""IMAP extensions over real sockets, with the reply forms their RFCs print: ENABLE, ID,
NAMESPACE, UNSELECT, ESEARCH, SORT, CONDSTORE, QRESYNC, UIDPLUS, MOVE; autologout."""

from __future__ import annotations

import re
import socket

import pytest

PASSWORD = "Ext-pass-2024"


class Session:
    def __init__(self, server, address: str | None = None):
        self.sock = socket.create_connection((server.host, server.port("imap")), timeout=10)
        self.buf = b""
        self.greeting = self._line()
        self.n = 0
        if address:
            self.ok(f'LOGIN "{address}" "{PASSWORD}"')

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def run(self, command: str | bytes) -> tuple[list[bytes], bytes]:
        """Send a tagged command; returns (untagged lines, tagged line)."""
        self.n += 1
        tag = b"x%d" % self.n
        self.sock.sendall(tag + b" " + (command.encode() if isinstance(command, str) else command) + b"\r\n")
        lines = []
        while True:
            line = self._line()
            if line.startswith(tag + b" "):
                return lines, line[len(tag) + 1:]
            lines.append(line)

    def ok(self, command) -> list[bytes]:
        lines, status = self.run(command)
        assert status.startswith(b"OK"), (command, lines, status)
        return lines

    def close(self):
        self.sock.close()


def append(s: Session, folder: str, subject: str, flags: str = "") -> int:
    msg = f"From: a@b.vn\r\nSubject: {subject}\r\nDate: Mon, 1 Jan 2024 0{len(subject) % 9}:00:00 +0000\r\n\r\nbody {subject}\r\n".encode()
    lines, status = s.run(b"APPEND %s %s{%d+}\r\n%s" % (folder.encode(), (b"(" + flags.encode() + b") ") if flags else b"", len(msg), msg))
    m = re.match(rb"OK \[APPENDUID (\d+) (\d+)\]", status)
    assert m, status
    return int(m.group(2))


@pytest.fixture(scope="module")
def box(server):
    address = f"ext@{server.domain}"
    server.add_account(address, PASSWORD, name="Extension Tester")
    s = Session(server, address)
    for subject, flags in (("charlie", ""), ("alpha", "\\Seen"), ("bravo", "\\Flagged")):
        append(s, "INBOX", subject, flags)
    s.close()
    return address


def test_enable_id_namespace_forms(server, box):
    s = Session(server, box)
    assert s.ok("ENABLE CONDSTORE X-UNKNOWN") == [b"* ENABLED CONDSTORE"]
    assert s.ok("ENABLE CONDSTORE") == [b"* ENABLED"]
    assert s.ok('ID ("name" "test" "version" "1")')[0].startswith(b'* ID ("name" "mailserver"')
    assert s.ok("ID NIL")[0].startswith(b"* ID (")
    # the shared namespace "Đơn vị/" of unit mailboxes, in modified UTF-7
    assert s.ok("NAMESPACE") == [b'* NAMESPACE (("" "/")) NIL (("&ARABoQ-n v&Hss-/" "/"))']
    s.close()


def test_unselect_leaves_deleted_messages(server, box):
    s = Session(server, box)
    s.ok("SELECT INBOX")
    uid = append(s, "INBOX", "temp")
    s.ok(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
    s.ok("UNSELECT")
    _, status = s.run("FETCH 1 FLAGS")
    assert status.startswith(b"BAD")  # back in the authenticated state
    s.ok("SELECT INBOX")
    assert any(line.startswith(b"* ESEARCH") for line in s.ok(f"UID SEARCH RETURN (COUNT) UID {uid} DELETED"))
    s.ok(f"UID EXPUNGE {uid}")
    s.close()


def test_esearch_result_options(server, box):
    s = Session(server, box)
    s.ok("SELECT INBOX")
    lines = s.ok("SEARCH RETURN (MIN MAX COUNT ALL) ALL")
    assert re.match(rb'^\* ESEARCH \(TAG "x\d+"\) MIN 1 MAX 3 COUNT 3 ALL 1:3$', lines[-1])
    lines = s.ok("UID SEARCH RETURN (COUNT) SUBJECT nothing-matches")
    assert re.match(rb'^\* ESEARCH \(TAG "x\d+"\) UID COUNT 0$', lines[-1])
    assert s.ok("SEARCH UNSEEN")[-1] == b"* SEARCH 1 3"
    s.close()


def test_sort_by_subject_date_and_reverse(server, box):
    s = Session(server, box)
    s.ok("SELECT INBOX")
    assert s.ok("SORT (SUBJECT) UTF-8 ALL")[-1] == b"* SORT 2 3 1"
    assert s.ok("SORT (REVERSE SUBJECT) UTF-8 ALL")[-1] == b"* SORT 1 3 2"
    assert s.ok("SORT (ARRIVAL) US-ASCII ALL")[-1] == b"* SORT 1 2 3"
    _, status = s.run("SORT (SUBJECT) KOI8-R ALL")
    assert status.startswith(b"NO [BADCHARSET")
    _, status = s.run("SORT (NONSENSE) UTF-8 ALL")
    assert status.startswith(b"BAD")
    s.close()


def test_condstore_modseq_fetch_store_and_modified(server, box):
    s = Session(server, box)
    lines = s.ok("SELECT INBOX (CONDSTORE)")
    highest = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", b"\n".join(lines)).group(1))
    lines = s.ok("FETCH 1:* (UID MODSEQ)")
    modseqs = {int(re.search(rb"UID (\d+)", ln).group(1)): int(re.search(rb"MODSEQ \((\d+)\)", ln).group(1)) for ln in lines if b"FETCH" in ln}
    assert max(modseqs.values()) <= highest
    assert s.ok(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})") == []
    uid1 = min(modseqs)
    lines = s.ok(f"UID STORE {uid1} (UNCHANGEDSINCE {modseqs[uid1]}) +FLAGS (\\Answered)")
    assert re.match(rb"^\* 1 FETCH \(FLAGS \(.*\\Answered.*\) UID %d MODSEQ \((\d+)\)\)$" % uid1, lines[0])
    _, status = s.run(f"UID STORE {uid1} (UNCHANGEDSINCE {modseqs[uid1]}) -FLAGS (\\Answered)")
    assert status.startswith(b"OK [MODIFIED %d]" % uid1)
    lines = s.ok(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})")
    assert len(lines) == 1 and b"MODSEQ" in lines[0]
    assert re.match(rb"^\* SEARCH 1 \(MODSEQ \d+\)$", s.ok(f"SEARCH MODSEQ {highest + 1}")[-1])
    assert re.match(rb'^\* STATUS "INBOX" \(HIGHESTMODSEQ \d+\)$', s.ok("STATUS INBOX (HIGHESTMODSEQ)")[-1])
    s.close()


def test_qresync_reports_vanished_and_changed_flags(server, box):
    s = Session(server, box)
    s.ok("ENABLE QRESYNC")
    lines = s.ok("SELECT INBOX")
    text = b"\n".join(lines)
    validity = int(re.search(rb"\[UIDVALIDITY (\d+)\]", text).group(1))
    highest = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", text).group(1))
    gone = append(s, "INBOX", "to vanish")
    s.ok(f"UID STORE {gone} +FLAGS.SILENT (\\Deleted)")
    lines = s.ok(f"UID EXPUNGE {gone}")
    assert b"* VANISHED %d" % gone in lines  # not EXPUNGE once QRESYNC is on
    s.ok("UID STORE 1:* +FLAGS.SILENT ($Resync)")
    lines = s.ok(f"SELECT INBOX (QRESYNC ({validity} {highest}))")
    assert lines[0] == b"* OK [CLOSED] Previous mailbox closed"
    assert b"* VANISHED (EARLIER) %d" % gone in lines
    assert sum(1 for ln in lines if b"FETCH" in ln and b"$Resync" in ln and b"MODSEQ" in ln) == 3
    lines = s.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest} VANISHED)")
    assert lines[0] == b"* VANISHED (EARLIER) %d" % gone
    _, status = s.run("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert status.startswith(b"BAD")  # VANISHED only with UID FETCH
    s.close()


def test_move_reports_copyuid_then_expunges(server, box):
    s = Session(server, box)
    s.ok("SELECT INBOX")
    uid = append(s, "INBOX", "moving")
    lines = s.ok(f"UID MOVE {uid} Junk")
    assert re.match(rb"^\* OK \[COPYUID \d+ %d \d+\]" % uid, lines[0])
    assert any(re.match(rb"^\* \d+ EXPUNGE$", ln) for ln in lines[1:])
    _, status = s.run("MOVE 1 Nowhere")
    assert status.startswith(b"NO [TRYCREATE]")
    s.close()


def test_unauthenticated_connection_is_logged_out_after_the_timer(make_server):
    srv = make_server({"limits": {"imap_autologout_unauth": 1}})
    s = Session(srv)
    s.sock.settimeout(15)  # the read waits for the BYE the 1 s timer brings
    assert s._line().startswith(b"* BYE")
    s.close()


def test_plaintext_login_refused_without_tls_when_loopback_is_not_trusted(make_server):
    import ssl

    srv = make_server({"tls": {"allow_plaintext_auth_on_loopback": False}})
    srv.add_account(f"tls@{srv.domain}", PASSWORD, name="TLS")
    s = Session(srv)
    assert b"LOGINDISABLED" in s.greeting and b"AUTH=PLAIN" not in s.greeting
    _, status = s.run(f'LOGIN "tls@{srv.domain}" "{PASSWORD}"')
    assert status.startswith(b"NO [PRIVACYREQUIRED]")
    _, status = s.run("AUTHENTICATE PLAIN AHRsc0BleGFtcGxlLmdvdi52bgB4")
    assert status.startswith(b"NO [PRIVACYREQUIRED]")
    s.ok("STARTTLS")
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    s.sock = ctx.wrap_socket(s.sock)
    caps = s.ok("CAPABILITY")[0]
    assert b"LOGINDISABLED" not in caps and b"AUTH=PLAIN" in caps
    s.ok(f'LOGIN "tls@{srv.domain}" "{PASSWORD}"')
    s.close()


def test_append_over_quota_is_overquota(make_server):
    srv = make_server({"quota": {"mailbox": 3000}})
    srv.add_account(f"quota@{srv.domain}", PASSWORD, name="Quota")
    s = Session(srv, f"quota@{srv.domain}")
    msg = b"Subject: big\r\n\r\n" + b"x" * 2000 + b"\r\n"
    _, status = s.run(b"APPEND INBOX {%d+}\r\n%s" % (len(msg), msg))
    assert status.startswith(b"OK [APPENDUID")
    _, status = s.run(b"APPEND INBOX {%d+}\r\n%s" % (len(msg), msg))
    assert status.startswith(b"NO [OVERQUOTA]")
    s.ok("SELECT INBOX")
    _, status = s.run("COPY 1 Trash")
    assert status.startswith(b"NO [OVERQUOTA]")
    s.close()


def test_list_extended_status_and_create_special_use(server, box):
    s = Session(server, box)
    s.ok('CREATE "Lưu trữ" (USE (\\Archive))'.encode("utf-8").replace("Lưu trữ".encode(), b"L&AbA-u tr&HuM-"))
    _, status = s.run('CREATE "Virtual" (USE (\\Flagged))')
    assert status.startswith(b"NO [USEATTR]")
    s.ok('CREATE "Dự án/2024"'.replace("Dự án", "D&HvE- &AOE-n"))
    s.ok('SUBSCRIBE "D&HvE- &AOE-n/2024"')
    lines = s.ok('LIST "" "*" RETURN (SPECIAL-USE SUBSCRIBED STATUS (MESSAGES UIDNEXT))')
    # CREATE does not subscribe (RFC 3501 §6.3.3): the new folder has no \Subscribed.
    assert b'* LIST (\\HasNoChildren \\Archive) "/" "L&AbA-u tr&HuM-"' in lines
    inbox = lines.index(next(ln for ln in lines if ln.endswith(b'"INBOX"')))
    assert re.match(rb'^\* STATUS "INBOX" \(MESSAGES \d+ UIDNEXT \d+\)$', lines[inbox + 1])
    lines = s.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    assert b'* LIST (\\NonExistent \\HasChildren) "/" "D&HvE- &AOE-n" ("CHILDINFO" ("SUBSCRIBED"))' in lines
    lines = s.ok('LIST (SPECIAL-USE) "" "*"')
    assert all(any(u in ln for u in (b"\\Sent", b"\\Drafts", b"\\Trash", b"\\Junk", b"\\Archive")) for ln in lines)
    assert s.ok('LIST "" ("INBOX" "Sent")') == [b'* LIST (\\HasNoChildren) "/" "INBOX"', b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"']
    assert s.ok('LIST "" ""') == [b'* LIST (\\Noselect) "/" ""']
    _, status = s.run('LIST (RECURSIVEMATCH) "" "*"')
    assert status.startswith(b"BAD")
    assert re.match(rb'^\* STATUS "INBOX" \(SIZE \d+\)$', s.ok("STATUS INBOX (SIZE)")[0])
    s.close()


def test_compress_deflate_both_directions(server, box):
    import zlib

    s = Session(server, box)
    s.ok("COMPRESS DEFLATE")
    deflate, inflate = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)

    def run(command: bytes, tag: bytes) -> bytes:
        s.sock.sendall(deflate.compress(command + b"\r\n") + deflate.flush(zlib.Z_SYNC_FLUSH))
        out = inflate.decompress(s.buf)
        while b"\r\n" + tag + b" " not in b"\r\n" + out:
            out += inflate.decompress(s.sock.recv(65536))
        return out

    assert b"c1 OK" in run(b"c1 SELECT INBOX", b"c1")
    body = b"Subject: nen\r\n\r\n" + b"n" * 100000 + b"\r\n"
    assert b"c2 OK [APPENDUID" in run(b"c2 APPEND Drafts {%d+}\r\n" % len(body) + body, b"c2")
    assert b"c3 NO [COMPRESSIONACTIVE]" in run(b"c3 COMPRESS DEFLATE", b"c3")
    s.close()
