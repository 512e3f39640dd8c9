"""The login guard's pure parts: the delay and block policy (mailserver/policy/guard.py), the PROXY
header parser (mailserver/policy/proxyheader.py) and the login log line (mailserver/policy/loginlog.py)."""

from __future__ import annotations

import ipaddress
import logging
import struct

import pytest

from mailserver.policy.guard import (
    GuardRules, Tally, account_key, blocked_for, client_key, current, delay_before, delay_failure, is_trusted, penalty,
)
from mailserver.policy.loginlog import log_login, quote
from mailserver.policy.proxyheader import V2_SIGNATURE, BadHeader, parse

RULES = GuardRules(delay_first=2, delay_max=15, block_after=10, block_seconds=900, forget_after=3600)


def test_penalty_doubles_from_the_first_failure_to_the_cap():
    assert [penalty(n, RULES) for n in range(7)] == [0, 2, 4, 8, 15, 15, 15]
    assert penalty(10_000, RULES) == 15  # no overflow on huge counts
    assert penalty(5, GuardRules(delay_first=0)) == 0


def test_an_address_is_delayed_by_its_failures_and_blocked_past_the_threshold():
    now = 10_000.0
    assert delay_before(None, now, RULES) == 0 and blocked_for(None, now, RULES) == 0
    assert delay_before(Tally(3, now - 1), now, RULES) == 8
    assert blocked_for(Tally(9, now - 1), now, RULES) == 0
    assert blocked_for(Tally(10, now - 100), now, RULES) == 800  # until block_seconds after the last failure
    assert blocked_for(Tally(10, now - 900), now, RULES) == 0


def test_tallies_are_forgotten_after_a_quiet_hour():
    now = 10_000.0
    assert current(Tally(50, now - 3599), now, RULES) == 50
    assert current(Tally(50, now - 3600), now, RULES) == 0
    assert delay_before(Tally(50, now - 3600), now, RULES) == 0


def test_a_failure_answer_waits_for_the_accounts_penalty_less_what_was_waited():
    assert delay_failure(1, 0, RULES) == 2
    assert delay_failure(3, 0, RULES) == 8  # guessed from many clean addresses: still slowed
    assert delay_failure(3, 8, RULES) == 0  # the address's own wait already covered it
    assert delay_failure(0, 0, RULES) == 0


def test_client_keys_count_ipv4_hosts_and_ipv6_slash_64s():
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")


def test_account_keys_are_nfc_lower_case_and_trimmed():
    assert account_key(" AnNV@Example.GOV.vn ") == "annv@example.gov.vn"
    assert account_key("nguye\u0302\u0303n@x") == account_key("nguyễn@x")
    assert len(account_key("a" * 1000)) == 200


def test_trusted_networks():
    nets = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"))
    assert is_trusted("10.1.2.3", nets) and is_trusted("::ffff:10.1.2.3", nets) and is_trusted("2001:db8::5", nets)
    assert not is_trusted("127.0.0.1", nets) and not is_trusted("", nets) and not is_trusted("name", nets)


# -- PROXY header ----------------------------------------------------------------------------------
def v2(command: int, family: int, body: bytes) -> bytes:
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


def test_proxy_v1_gives_the_client_and_the_bytes_after_it():
    header = parse(b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 143\r\na1 CAPABILITY\r\n")
    assert header.client == ("203.0.113.7", 40000) and header.rest == b"a1 CAPABILITY\r\n"
    assert parse(b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 143\r\n").client == ("2001:db8::7", 40000)
    assert parse(b"PROXY UNKNOWN\r\n").client is None


def test_proxy_headers_arriving_in_pieces_wait_for_the_rest():
    assert parse(b"") is None and parse(b"PRO") is None and parse(b"PROXY TCP4 203.0.113.7") is None
    assert parse(V2_SIGNATURE[:5]) is None and parse(v2(1, 0x11, b"\x00" * 12)[:20]) is None


@pytest.mark.parametrize("data", [
    b"EHLO x\r\n", b"PROXY TCP4 not-an-ip 192.0.2.1 1 2\r\n", b"PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n",
    b"PROXY TCP4 203.0.113.7 192.0.2.1 99999 2\r\n", b"PROXY TCP4 203.0.113.7 192.0.2.1 1\r\n",
    b"PROXY " + b"x" * 120, b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2 extra\r\n",
])
def test_malformed_proxy_headers_are_refused(data):
    with pytest.raises(BadHeader):
        parse(data)


def test_proxy_v2_ipv4_ipv6_and_local():
    body4 = bytes([203, 0, 113, 7, 192, 0, 2, 1]) + struct.pack("!HH", 40000, 993)
    header = parse(v2(1, 0x11, body4) + b"rest")
    assert header.client == ("203.0.113.7", 40000) and header.rest == b"rest"
    body6 = ipaddress.IPv6Address("2001:db8::7").packed + ipaddress.IPv6Address("2001:db8::1").packed + struct.pack("!HH", 5, 6)
    assert parse(v2(1, 0x21, body6)).client == ("2001:db8::7", 5)
    assert parse(v2(0, 0x00, b"")).client is None  # LOCAL: the proxy's health check
    with pytest.raises(BadHeader):
        parse(v2(1, 0x11, b"\x00" * 4))  # too short for IPv4
    with pytest.raises(BadHeader):
        parse(V2_SIGNATURE + bytes([0x12, 0x11, 0, 0]))  # version 1 in a v2 frame


# -- the log line ------------------------------------------------------------------------------------
def test_a_typed_name_cannot_break_the_line_or_fake_a_field(caplog):
    caplog.set_level(logging.INFO, "mailserver.login")
    log_login("imap", "203.0.113.7", 'x" client=10.0.0.1 result=ok\nlogin protocol=imap', "fail", "credentials")
    (line,) = caplog.messages
    assert "\n" not in line
    assert line.startswith("login protocol=imap client=203.0.113.7 result=fail reason=credentials user=\"")
    assert quote('a"b\\c\x85') == '"a\\"b\\\\c\\x85"'
