"""Many IDLE clients: the autologout timer never ends a connection while one of its
commands is being worked on; concurrent LOGINs of one account share one verification without
mixing up right and wrong passwords; mail that arrives between SELECT and IDLE is announced."""

from __future__ import annotations

import socket
import threading
import time

from tests.test_imap_e2e import deliver
from tests.test_imap_extensions import Session

PASSWORD = "Ext-pass-2024"


def test_autologout_does_not_end_a_command_in_progress(make_server):
    srv = make_server({"limits": {"imap_autologout_unauth": 1, "imap_autologout": 2}})
    address = f"slow@{srv.domain}"
    srv.add_account(address, PASSWORD, name="Chậm")
    s = Session(srv, address)
    body = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 3000  # 3 MB: more than the socket buffers hold
    _, status = s.run(b"APPEND INBOX {%d+}\r\n%s" % (len(body), body))
    assert status.startswith(b"OK"), status
    s.ok("SELECT INBOX")
    s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sock.sendall(b"f FETCH 1 BODY.PEEK[]\r\n")
    time.sleep(4)  # the server is blocked on back-pressure for longer than the 2 s timer
    got = bytearray()
    s.sock.settimeout(10)
    while b"\r\nf OK" not in got[-200:]:
        chunk = s.sock.recv(1 << 20)
        assert chunk, bytes(got[-200:])
        got += chunk
    done = got.index(b"\r\nf OK FETCH completed")
    assert body in got[:done] and b"* BYE" not in got[:done]  # the whole body, no autologout
    s.sock.settimeout(6)  # silence after the command: now the 2 s timer runs out
    rest = bytearray(got[done:])
    while chunk := s.sock.recv(65536):
        rest += chunk
    assert b"* BYE Autologout" in rest
    s.close()


def test_concurrent_logins_of_one_account_each_get_their_own_answer(server):
    address = f"many@{server.domain}"
    server.add_account(address, PASSWORD, name="Nhiều")
    results: dict[int, bytes] = {}

    def one(i: int) -> None:
        s = Session(server)
        password = PASSWORD if i % 2 == 0 else "wrong-" + PASSWORD
        _, results[i] = s.run(f'LOGIN "{address}" "{password}"')
        s.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, status in results.items():
        assert status.startswith(b"OK" if i % 2 == 0 else b"NO [AUTHENTICATIONFAILED]"), (i, status)
    assert len(results) == 40


def test_mail_arriving_between_select_and_idle_is_announced_at_idle(server):
    address = f"between@{server.domain}"
    server.add_account(address, PASSWORD, name="Giữa")
    s = Session(server, address)
    assert b"* 0 EXISTS" in s.ok("SELECT INBOX")
    deliver(server, address)
    time.sleep(0.5)
    s.sock.sendall(b"i IDLE\r\n")
    s.sock.settimeout(2)
    lines = [s._line(), s._line(), s._line()]  # EXISTS and RECENT may come before the continuation
    assert b"* 1 EXISTS" in lines and any(ln.startswith(b"+ ") for ln in lines), lines
    s.sock.sendall(b"DONE\r\n")
    s.close()
