"""Password history (passwords.history): a new password differs from the last N — refused by
`account passwd --password` and by the portal's /password page over HTTPS (Vietnamese, then
English); the policy function on its own."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.parse
import urllib.request

from argon2 import PasswordHasher

from mailserver.policy.passwords import reused
from tests.conftest import free_port, wait_until

P = ["Mk!11111111a", "Mk!22222222b", "Mk!33333333c", "Mk!44444444d", "Mk!55555555e"]


def test_reused_policy():
    hasher = PasswordHasher(time_cost=1, memory_cost=1024)
    hashes = [hasher.hash(p) for p in P[:3]]

    def verify(h, p):
        try:
            return hasher.verify(h, p)
        except Exception:  # noqa: BLE001 - a mismatch
            return False

    assert reused(P[3], hashes, verify) is None
    reason = reused(P[1], hashes, verify)
    assert reason == "reused" and "3 mật khẩu gần nhất" in reason.vi and "last 3 passwords" in reason.en
    assert reused(P[0], hashes[:1], verify).en == "The new password must differ from the current one."


def test_account_passwd_refuses_the_last_n(make_server):
    srv = make_server({"passwords": {"history": 3}}, start=False)
    a = f"hist@{srv.domain}"
    srv.add_account(a, P[0])
    for p in P[1:3]:
        srv.cli("account", "passwd", a, "--password", p)
    refused = srv.cli("account", "passwd", a, "--password", P[0], check=False)
    assert refused.returncode == 1 and "differ from the last 3 passwords" in refused.stderr
    srv.cli("account", "passwd", a, "--password", P[3])
    srv.cli("account", "passwd", a, "--password", P[0])  # four changes ago: allowed again


def _post(port: int, form: dict) -> tuple[int, str]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test server's self-signed certificate
    data = urllib.parse.urlencode(form).encode()
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/password", data=data, context=ctx, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_portal_refuses_an_earlier_password(make_server):
    import socket

    web = free_port()
    srv = make_server({"passwords": {"history": 2}, "listeners": {"web": {"address": "127.0.0.1", "port": web}}})

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", web)) == 0

    wait_until(listening, timeout=30, what="the portal")
    a = f"web@{srv.domain}"
    srv.add_account(a, P[0])
    status, _ = _post(web, {"address": a, "current": P[0], "new": P[1], "confirm": P[1]})
    assert status == 200
    status, body = _post(web, {"address": a, "current": P[1], "new": P[0], "confirm": P[0]})
    assert status == 400 and "Mật khẩu mới phải khác 2 mật khẩu gần nhất đã dùng." in body
    assert body.index("Mật khẩu mới phải khác") < body.index("The new password must differ from the last 2")
