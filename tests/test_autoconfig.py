"""Client set-up from the portal over HTTPS: Thunderbird autoconfig (clientConfig 1.1 fields),
Outlook autodiscover POX, and an Apple .mobileconfig for a user who gives a right password — each
built from the listeners actually configured, and the advertised IMAP server then logged in to."""

from __future__ import annotations

import imaplib
import plistlib
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import free_port, wait_until

PASSWORD = "Mk-autoconf-2026!"
RESPONSE_NS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
OK, BAD_REQUEST, FORBIDDEN, NOT_FOUND = 200, 400, 403, 404


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    from tests.conftest import BACKENDS, Server

    web = free_port()
    server = Server(tmp_path_factory.mktemp("autoconfig"), BACKENDS[0], {"listeners": {"web": {"address": "127.0.0.1", "port": web}}})
    server.web_port = web
    try:
        server.start()
        wait_until(lambda: _listening(web), timeout=30, what="the portal listening")
        server.add_account(f"annv@{server.domain}", PASSWORD)
        yield server
    finally:
        server.destroy()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ctx(server) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(server.settings.tls.cert))
    ctx.check_hostname = False  # the certificate names mail.example.gov.vn; the test dials 127.0.0.1
    return ctx


def _fetch(server, path: str, data: bytes | None = None, content_type: str = "text/xml"):
    url = f"https://127.0.0.1:{server.web_port}{path}"
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type} if data else {})
    try:
        with urllib.request.urlopen(request, context=_ctx(server), timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def _ports(server):
    return {name: server.port(name) for name in ("imap", "imaps", "pop3", "pop3s", "submission", "submissions")}


@pytest.mark.parametrize("path", ["/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml?emailaddress=annv%40example.gov.vn"])
def test_thunderbird_autoconfig_lists_every_configured_listener(portal, path):
    status, headers, body = _fetch(portal, path)
    assert status == OK and headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(body)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    provider = root.find("emailProvider")
    assert provider.get("id") == "example.gov.vn"
    assert {d.text for d in provider.findall("domain")} == {"example.gov.vn", "sub.example.gov.vn"}
    assert provider.findtext("displayName")
    got = set()
    for tag in ("incomingServer", "outgoingServer"):
        for s in provider.findall(tag):
            assert s.findtext("hostname") == "mail.example.gov.vn"
            assert s.findtext("authentication") == "password-cleartext" and s.findtext("username") == "%EMAILADDRESS%"
            got.add((s.get("type"), int(s.findtext("port")), s.findtext("socketType")))
    p = _ports(portal)
    assert got == {("imap", p["imaps"], "SSL"), ("imap", p["imap"], "STARTTLS"), ("pop3", p["pop3s"], "SSL"),
                   ("pop3", p["pop3"], "STARTTLS"), ("smtp", p["submissions"], "SSL"), ("smtp", p["submission"], "STARTTLS")}
    first_imap = provider.find("incomingServer")
    assert first_imap.findtext("socketType") == "SSL"  # implicit TLS preferred
    client = imaplib.IMAP4_SSL("127.0.0.1", int(first_imap.findtext("port")), ssl_context=_ctx(portal))
    try:
        assert client.login(f"annv@{portal.domain}", PASSWORD)[0] == "OK"
    finally:
        client.logout()


def test_outlook_autodiscover_pox(portal):
    request = ('<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/'
               'autodiscover/outlook/requestschema/2006"><Request><EMailAddress>annv@example.gov.vn</EMailAddress>'
               '<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a'
               '</AcceptableResponseSchema></Request></Autodiscover>').encode()
    status, _h, body = _fetch(portal, "/autodiscover/autodiscover.xml", request)
    assert status == OK
    account = ET.fromstring(body).find(f"{RESPONSE_NS}Response/{RESPONSE_NS}Account")
    assert account.findtext(f"{RESPONSE_NS}AccountType") == "email" and account.findtext(f"{RESPONSE_NS}Action") == "settings"
    protocols = {p.findtext(f"{RESPONSE_NS}Type"): p for p in account.findall(f"{RESPONSE_NS}Protocol")}
    p = _ports(portal)
    assert {k: int(v.findtext(f"{RESPONSE_NS}Port")) for k, v in protocols.items()} == {
        "IMAP": p["imaps"], "POP3": p["pop3s"], "SMTP": p["submissions"]}
    assert all(v.findtext(f"{RESPONSE_NS}LoginName") == "annv@example.gov.vn" for v in protocols.values())
    assert _fetch(portal, "/autodiscover/autodiscover.xml", b"<not xml")[0] == BAD_REQUEST
    bomb = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxx">]><a>&x;</a>'
    assert _fetch(portal, "/autodiscover/autodiscover.xml", bomb)[0] == BAD_REQUEST
    assert _fetch(portal, "/autodiscover/other.xml")[0] == NOT_FOUND


def test_apple_mobileconfig_for_a_user_with_the_right_password(portal):
    status, _h, body = _fetch(portal, "/mobileconfig")
    assert status == OK and b'name="password"' in body
    wrong = urllib.parse.urlencode({"address": "annv@example.gov.vn", "password": "wrong"}).encode()
    assert _fetch(portal, "/mobileconfig", wrong, "application/x-www-form-urlencoded")[0] == FORBIDDEN
    form = urllib.parse.urlencode({"address": "annv@example.gov.vn", "password": PASSWORD}).encode()
    status, headers, body = _fetch(portal, "/mobileconfig", form, "application/x-www-form-urlencoded")
    assert status == OK and headers["Content-Type"] == "application/x-apple-aspen-config"
    assert "annv.mobileconfig" in headers["Content-Disposition"]
    profile = plistlib.loads(body)
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    (mail,) = profile["PayloadContent"]
    p = _ports(portal)
    assert mail["PayloadType"] == "com.apple.mail.managed" and mail["EmailAccountType"] == "EmailTypeIMAP"
    assert (mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"]) == ("mail.example.gov.vn", p["imaps"])
    assert (mail["OutgoingMailServerPortNumber"], mail["IncomingPassword"]) == (p["submissions"], PASSWORD)
    assert mail["EmailAccountName"] == "Nguyễn Văn An"
    for key in ("PayloadUUID", "PayloadIdentifier"):
        assert profile[key] and mail[key]


def test_mta_sts_policy_names_our_mx(portal):
    status, headers, body = _fetch(portal, "/.well-known/mta-sts.txt")
    assert status == OK and headers["Content-Type"] == "text/plain"
    lines = dict(line.split(": ", 1) for line in body.decode().splitlines())
    assert lines == {"version": "STSv1", "mode": "none", "mx": "mail.example.gov.vn", "max_age": "604800"}  # mta_sts.mode defaults to none
