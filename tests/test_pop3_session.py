"""POP3 sessions against an in-memory fake store and a string transport (no sockets, no threads).

The end-to-end tests over real sockets with real clients are in ``test_pop3_e2e.py``.
"""

from __future__ import annotations

import base64
import datetime as dt
import io

import pytest
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from pop3.maildrop import MaildropLocks, unique_id
from pop3.server import POP3Server, Pop3Context
from storage.api import Account, AccountKind, AccountState, Folder, FolderView, MessageInfo
from storage.errors import Temp

OK = b"+OK"
ERR = b"-ERR"
ERR_AUTH = b"-ERR [AUTH]"
ERR_IN_USE = b"-ERR [IN-USE]"
ERR_SYS_TEMP = b"-ERR [SYS/TEMP]"
UIDVALIDITY = 1700000000
PASSWORD = "Mật-khẩu 1"
NOW = dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)

MSG1 = "Subject: Công văn số 12\r\n\r\n.dòng một\r\n.\r\nhai\r\n".encode()
MSG2 = b"Subject: two\r\n\r\nno final newline"
SIZE = len(MSG1) + len(MSG2)


class FakeStore:
    """The slice of ``storage.api.Store`` POP3 uses, with failures that can be switched on."""

    def __init__(self, bodies: list[bytes]) -> None:
        self.folder = Folder(7, 1, "INBOX", None, True, UIDVALIDITY, 10 + len(bodies), 1)
        self.blobs = {f"sha{i}": body for i, body in enumerate(bodies)}
        self.rows = {10 + i: (f"sha{i}", set()) for i in range(len(bodies))}  # uid -> (blob, flags)
        self.fail_expunge = False
        self.fail_open_blob: Exception | None = None

    # The roles of the store POP3 reaches (storage.api.Folders, Messages): this fake plays both.
    @property
    def folders(self):
        return self

    @property
    def messages(self):
        return self

    def get_folder(self, account_id, name):
        assert (account_id, name) == (1, "INBOX")
        return self.folder

    def open_view(self, folder_id, *, claim_recent):
        assert claim_recent is False
        return FolderView(self.folder, sorted(self.rows), frozenset(), 0, None)

    def iter_fetch(self, folder_id, uids, *, fields=frozenset(), batch=500):
        yield [MessageInfo(uid, 1, frozenset(self.rows[uid][1]), NOW, len(self.blobs[self.rows[uid][0]]),
                           self.rows[uid][0]) for uid in uids if uid in self.rows]

    def open_blob(self, sha):
        if self.fail_open_blob is not None:
            raise self.fail_open_blob
        return io.BytesIO(self.blobs[sha])

    def store_flags(self, folder_id, uids, mode, flags, *, unchanged_since=None):
        assert mode == "add"
        for uid in uids:
            self.rows[uid][1].update(flags)

    def expunge(self, folder_id, uids=None):
        if self.fail_expunge:
            raise Temp("database is locked")
        gone = [u for u in uids if "\\Deleted" in self.rows[u][1]]
        for uid in gone:
            del self.rows[uid]
        return gone


class FakeAuth:
    def __init__(self) -> None:
        self.account = Account(1, "annv@example.gov.vn", "Nguyễn Văn An", AccountKind.PERSONAL,
                               AccountState.ACTIVE, "x", NOW, None, None, None, 0, 0)
        self.calls = []

    def authenticate(self, username, password):
        self.calls.append((username, password))
        ok = username == self.account.address and password == PASSWORD
        return self.account if ok else None


class TLSStringTransport(StringTransport):
    tls_options = None

    def startTLS(self, options):
        self.tls_options = options


def sync_thread(f, *args, **kwargs):
    return defer.maybeDeferred(f, *args, **kwargs)


class Session:
    """A POP3Server on a string transport; ``send`` returns the reply bytes it produced."""

    def __init__(self, store, auth, locks=None, host="127.0.0.1", tls="tls-options", implicit=False,
                 loopback_plaintext=True, run_in_thread=sync_thread, clock=None):
        ctx = Pop3Context(store=store, auth=auth, locks=locks or MaildropLocks(), tls=tls,
                          implicit_tls=implicit, allow_plaintext_auth_on_loopback=loopback_plaintext,
                          autologout=600, run_in_thread=run_in_thread)
        self.proto = POP3Server(ctx)
        if clock is not None:
            self.proto.callLater = clock.callLater
        self.transport = TLSStringTransport(peerAddress=IPv4Address("TCP", host, 40000))
        self.proto.makeConnection(self.transport)
        self.greeting = self.take()

    def take(self) -> bytes:
        out = self.transport.value()
        self.transport.clear()
        return out

    def send(self, data: bytes) -> bytes:
        self.proto.dataReceived(data)
        return self.take()

    def login(self) -> bytes:
        return self.send(f"USER annv@example.gov.vn\r\nPASS {PASSWORD}\r\n".encode())


@pytest.fixture
def store():
    return FakeStore([MSG1, MSG2])


@pytest.fixture
def auth():
    return FakeAuth()


def test_greeting_has_no_apop_timestamp(store, auth):
    session = Session(store, auth)
    assert session.greeting.startswith(OK) and b"<" not in session.greeting


def test_capa_lists_only_true_capabilities(store, auth):
    caps = Session(store, auth).send(b"CAPA\r\n").split(b"\r\n")
    assert caps[0].startswith(OK) and caps[-2:] == [b".", b""]
    assert set(caps[1:-2]) == {b"TOP", b"UIDL", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING",
                               b"USER", b"SASL PLAIN", b"STLS"}


def test_plaintext_login_refused_before_tls_off_loopback(store, auth):
    session = Session(store, auth, host="192.0.2.5")
    caps = session.send(b"CAPA\r\n")
    assert b"USER" not in caps and b"SASL" not in caps and b"STLS" in caps
    assert session.send(b"USER annv@example.gov.vn\r\n").startswith(ERR_AUTH)
    assert session.send(b"AUTH PLAIN\r\n").startswith(ERR_AUTH)
    assert auth.calls == []


def test_loopback_plaintext_refused_when_settings_say_so(store, auth):
    session = Session(store, auth, loopback_plaintext=False)
    assert session.send(b"USER annv@example.gov.vn\r\n").startswith(ERR_AUTH)


def test_stls_starts_tls_and_drops_pipelined_plaintext(store, auth):
    session = Session(store, auth, host="192.0.2.5")
    reply = session.send(f"STLS\r\nUSER annv@example.gov.vn\r\nPASS {PASSWORD}\r\n".encode())
    assert reply == b"+OK Begin TLS negotiation\r\n"
    assert session.transport.tls_options == "tls-options" and auth.calls == []
    assert b"STLS" not in session.send(b"CAPA\r\n")
    assert session.login().endswith(b"+OK Maildrop has 2 messages (%d octets)\r\n" % (len(MSG1) + len(MSG2)))
    assert session.send(b"STLS\r\n").startswith(ERR)


def test_stls_refused_on_implicit_tls_and_without_certificate(store, auth):
    assert Session(store, auth, implicit=True).send(b"STLS\r\n").startswith(ERR)
    assert Session(store, auth, tls=None).send(b"STLS\r\n").startswith(ERR)


def test_wrong_password_and_unknown_user_get_the_same_reply(store, auth):
    session = Session(store, auth)
    wrong = session.send(b"USER annv@example.gov.vn\r\nPASS nope\r\n").split(b"\r\n")[1]
    unknown = session.send(b"USER ghost@example.gov.vn\r\nPASS nope\r\n").split(b"\r\n")[1]
    assert wrong == unknown and wrong.startswith(ERR_AUTH)
    assert session.login().split(b"\r\n")[1].startswith(OK)  # the session goes on


def test_pass_without_user_and_password_with_spaces(store, auth):
    session = Session(store, auth)
    assert session.send(b"PASS x\r\n").startswith(ERR)
    assert session.login().split(b"\r\n")[1].startswith(OK)
    assert auth.calls[-1] == ("annv@example.gov.vn", PASSWORD)


def plain(authz: str, user: str, password: str) -> bytes:
    return base64.b64encode(f"{authz}\0{user}\0{password}".encode())


def test_auth_plain_with_initial_response(store, auth):
    session = Session(store, auth)
    assert session.send(b"AUTH PLAIN " + plain("", auth.account.address, PASSWORD) + b"\r\n").startswith(OK)
    assert session.send(b"STAT\r\n") == b"+OK 2 %d\r\n" % (len(MSG1) + len(MSG2))


def test_auth_plain_with_continuation_and_authzid_equal_to_user(store, auth):
    session = Session(store, auth)
    assert session.send(b"AUTH PLAIN\r\n") == b"+ \r\n"
    reply = session.send(plain(auth.account.address, auth.account.address, PASSWORD) + b"\r\n")
    assert reply.startswith(b"+OK Maildrop")


def test_auth_plain_refusals(store, auth):
    session = Session(store, auth)
    assert session.send(b"AUTH PLAIN\r\n*\r\n") == b"+ \r\n-ERR Authentication cancelled\r\n"
    assert session.send(b"AUTH PLAIN !!!notbase64\r\n").startswith(ERR)
    assert session.send(b"AUTH PLAIN =\r\n").startswith(ERR_AUTH)
    other = plain("boss@example.gov.vn", auth.account.address, PASSWORD)
    assert session.send(b"AUTH PLAIN " + other + b"\r\n").startswith(ERR_AUTH)
    assert session.send(b"AUTH CRAM-MD5\r\n").startswith(ERR)
    assert session.send(b"AUTH PLAIN " + plain("", auth.account.address, "bad") + b"\r\n").startswith(ERR_AUTH)
    assert session.send(b"AUTH\r\n") == b"+OK Supported SASL mechanisms follow\r\nPLAIN\r\n.\r\n"


def test_list_uidl_stat_follow_rfc1939(store, auth):
    session = Session(store, auth)
    session.login()
    uid1, uid2 = unique_id(UIDVALIDITY, 10).encode(), unique_id(UIDVALIDITY, 11).encode()
    assert session.send(b"UIDL 2\r\n") == b"+OK 2 " + uid2 + b"\r\n"
    assert session.send(b"UIDL\r\n") == b"+OK 2 messages (%d octets)\r\n1 %s\r\n2 %s\r\n.\r\n" % (
        len(MSG1) + len(MSG2), uid1, uid2)
    assert session.send(b"LIST 1\r\n") == b"+OK 1 %d\r\n" % len(MSG1)
    assert session.send(b"LIST\r\n").endswith(b"\r\n1 %d\r\n2 %d\r\n.\r\n" % (len(MSG1), len(MSG2)))
    for bad in (b"LIST 3", b"LIST 0", b"UIDL -1", b"LIST x", b"LIST 1 2", b"STAT 1"):
        assert session.send(bad + b"\r\n").startswith(ERR), bad


def test_retr_stuffs_dots_and_ends_unterminated_body(store, auth):
    session = Session(store, auth)
    session.login()
    reply = session.send(b"RETR 1\r\n")
    assert reply == b"+OK %d octets\r\n" % len(MSG1) + (
        "Subject: Công văn số 12\r\n\r\n..dòng một\r\n..\r\nhai\r\n.\r\n".encode())
    assert session.send(b"RETR 2\r\n").endswith(b"\r\n\r\nno final newline\r\n.\r\n")


def test_top_sends_headers_and_n_lines(store, auth):
    session = Session(store, auth)
    session.login()
    assert session.send(b"TOP 1 1\r\n") == (
        "+OK Top of message follows\r\nSubject: Công văn số 12\r\n\r\n..dòng một\r\n.\r\n".encode())
    assert session.send(b"TOP 1 x\r\n").startswith(ERR)
    assert session.send(b"TOP 1\r\n").startswith(ERR)


def test_dele_validates_and_takes_effect_only_at_quit(store, auth):
    session = Session(store, auth)
    session.login()
    assert session.send(b"DELE 1\r\n").startswith(OK)
    assert session.send(b"DELE 1\r\n").startswith(b"-ERR Message already deleted")
    assert session.send(b"DELE 9\r\n").startswith(b"-ERR No such message")
    assert session.send(b"RETR 1\r\n").startswith(ERR)
    assert session.send(b"STAT\r\n") == b"+OK 1 %d\r\n" % len(MSG2)
    assert sorted(store.rows) == [10, 11]  # nothing removed before QUIT
    assert session.send(b"QUIT\r\n").startswith(OK)
    assert sorted(store.rows) == [11] and session.transport.disconnecting


def test_rset_undeletes(store, auth):
    session = Session(store, auth)
    session.login()
    session.send(b"DELE 1\r\nDELE 2\r\n")
    assert session.send(b"RSET\r\n") == b"+OK Maildrop has 2 messages (%d octets)\r\n" % (len(MSG1) + len(MSG2))
    session.send(b"QUIT\r\n")
    assert sorted(store.rows) == [10, 11]


def test_connection_lost_without_quit_deletes_nothing(store, auth):
    session = Session(store, auth)
    session.login()
    session.send(b"DELE 1\r\n")
    session.proto.connectionLost(None)
    assert sorted(store.rows) == [10, 11]


def test_quit_reports_failed_commit(store, auth):
    store.fail_expunge = True
    session = Session(store, auth)
    session.login()
    session.send(b"DELE 1\r\n")
    reply = session.send(b"QUIT\r\n")
    assert reply.startswith(ERR_SYS_TEMP) and b"locked" not in reply and b"errors" not in reply


def test_quit_answers_only_after_the_commit(store, auth):
    pending = []

    def deferred_thread(f, *args):
        if getattr(f, "__name__", "") == "commit":
            d = defer.Deferred()
            pending.append((d, f, args))
            return d
        return sync_thread(f, *args)

    session = Session(store, auth, run_in_thread=deferred_thread)
    session.login()
    assert session.send(b"DELE 2\r\nQUIT\r\n") == b"+OK Message 2 deleted\r\n"
    d, f, args = pending.pop()
    d.callback(f(*args))
    assert session.take() == b"+OK Bye, 1 messages deleted\r\n" and sorted(store.rows) == [10]


def test_second_session_gets_in_use_until_the_first_ends(store, auth):
    locks = MaildropLocks()
    first, second = Session(store, auth, locks), Session(store, auth, locks)
    first.login()
    assert second.login().split(b"\r\n")[1].startswith(ERR_IN_USE)
    first.send(b"QUIT\r\n")
    first.proto.connectionLost(None)
    assert second.login().split(b"\r\n")[1].startswith(OK)
    second.proto.connectionLost(None)
    third = Session(store, auth, locks)
    assert third.login().split(b"\r\n")[1].startswith(OK)


def test_bad_commands_get_err_and_session_continues(store, auth):
    session = Session(store, auth)
    assert session.send(b"FOO\r\n").startswith(b"-ERR Unknown command")
    assert session.send(b"STAT\r\n").startswith(b"-ERR Command not valid")
    assert session.send(b"\r\n").startswith(ERR)
    assert session.send(b"X" * 20000 + b"\r\n").startswith(b"-ERR Line too long")
    assert session.send(b"\xff\xfe\r\n").startswith(ERR)
    session.login()
    assert session.send(b"USER x\r\n").startswith(b"-ERR Command not valid")
    assert session.send(b"NOOP\r\n") == b"+OK\r\n"


def test_store_errors_never_leak_exception_details(store, auth):
    store.fail_open_blob = RuntimeError("secret-path /var/lib/blob")
    session = Session(store, auth)
    session.login()
    reply = session.send(b"RETR 1\r\n")
    assert reply.startswith(ERR_SYS_TEMP) and b"secret" not in reply and b"RuntimeError" not in reply
    assert session.send(b"NOOP\r\n") == b"+OK\r\n"


def test_pipelined_commands_answer_in_order_after_slow_ones(store, auth):
    pending = []

    def deferred_thread(f, *args):
        d = defer.Deferred()
        pending.append((d, f, args))
        return d

    session = Session(store, auth, run_in_thread=deferred_thread)
    session.proto.dataReceived(f"USER annv@example.gov.vn\r\nPASS {PASSWORD}\r\nSTAT\r\nNOOP\r\n".encode())
    while pending:
        d, f, args = pending.pop(0)
        d.callback(f(*args))
    lines = session.take().split(b"\r\n")
    assert lines[:4] == [b"+OK Send PASS", b"+OK Maildrop has 2 messages (%d octets)" % SIZE,
                         b"+OK 2 %d" % SIZE, OK]


def test_autologout_closes_idle_session(store, auth):
    clock = task.Clock()
    session = Session(store, auth, clock=clock)
    clock.advance(599)
    assert not session.transport.disconnecting
    session.send(b"CAPA\r\n")
    clock.advance(599)
    assert not session.transport.disconnecting
    clock.advance(2)
    assert session.take().startswith(ERR) and session.transport.disconnecting


def test_third_wrong_password_closes_the_connection(store, auth):
    session = Session(store, auth)
    for _ in range(2):
        assert session.send(b"USER annv@example.gov.vn\r\nPASS bad\r\n").endswith(b"-ERR [AUTH] Authentication failed\r\n")
        assert not session.transport.disconnecting
    session.send(b"USER annv@example.gov.vn\r\nPASS bad\r\n")
    assert session.transport.disconnecting


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("192.0.2.1", False), ("::ffff:192.0.2.1", False), ("fe80::1%eth0", False)],
)
def test_plaintext_exception_applies_to_loopback_peers_only(store, auth, host, loopback):
    session = Session(store, auth, host=host)
    assert session.proto.peer_is_loopback is loopback
    assert (b"USER\r\n" in session.send(b"CAPA\r\n")) is loopback


def test_sessions_turn_off_nagle_on_their_socket(store, auth):
    """TCP_NODELAY: the last small write of a long RETR must not wait for a delayed ACK."""

    class NoDelayTransport(TLSStringTransport):
        no_delay = None

        def setTcpNoDelay(self, enabled):
            self.no_delay = enabled

    proto = POP3Server(Pop3Context(store=store, auth=auth, locks=MaildropLocks(), tls=None, implicit_tls=True,
                                   allow_plaintext_auth_on_loopback=True, autologout=600, run_in_thread=sync_thread))
    transport = NoDelayTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
    proto.makeConnection(transport)
    assert transport.no_delay is True
