"""LDAP-backed accounts (R-PROTO-3) against a real OpenLDAP slapd with a Vietnamese tree: `ldap
sync` creates units and accounts (names NFC, addresses from ``mail`` or the profile's rule), IMAP
and POP3 check passwords by a bind over StartTLS, and a person disabled in or removed from the
directory is locked, then unlocked when enabled again."""

from __future__ import annotations

import imaplib
import poplib
import unicodedata

import pytest

from config.ldap import Ldap
from mailserver.directory_sync.bind import check_password
from mailserver.directory_sync.connection import LDAP_MARK
from tests.ldap_daemon import ADMIN_DN, ADMIN_PASSWORD, SUFFIX, Slapd, tree

AN_DN = f"uid=annv,ou=vp,{SUFFIX}"
BINH_DN = f"uid=ttbinh,ou=tccb,ou=vp,{SUFFIX}"
AN_PASSWORD = "MatKhau-An-2026"  # imaplib sends LOGIN in ASCII
DUNG_PASSWORD = "Mật-khẩu-Dung-1"  # a Vietnamese password, checked by bind
BINH_PASSWORD = "Bình@2026xyz"
DUNG_NFD = unicodedata.normalize("NFD", "Phạm Thị Dung")

PEOPLE = [
    # uid, cn, password, mail, departmentNumber, employeeType
    ("annv", "Nguyễn Văn An", AN_PASSWORD, "annv@example.gov.vn", "vp", "staff"),
    ("ttbinh", "Trần Thị Bình", BINH_PASSWORD, None, None, "staff"),  # no mail: the profile's rule; unit from the tree
    ("lvcuong", "Lê Văn Cường", "Cuong#2026abc", "cuonglv@example.gov.vn", "vp", "disabled"),  # never created
    ("ptdung", DUNG_NFD, DUNG_PASSWORD, "dungpt@example.gov.vn", "tccb", "staff"),  # decomposed name
]


@pytest.fixture(scope="module")
def slapd():
    daemon = Slapd(tree(PEOPLE))
    yield daemon
    daemon.stop()


@pytest.fixture
def own_slapd():
    """A directory of the test's own, for a test that changes it (the module's one is shared by
    the test's SQLite and PostgreSQL runs, which would see each other's changes)."""
    daemon = Slapd(tree(PEOPLE))
    yield daemon
    daemon.stop()


def _ldap_config(slapd: Slapd) -> dict:
    return {"ldap": {
        "url": slapd.url, "start_tls": True, "ca_file": str(slapd.cert), "base_dn": SUFFIX,
        "bind_dn": ADMIN_DN, "bind_password": ADMIN_PASSWORD, "disabled_filter": "(employeeType=disabled)",
    }}


def _imap_login(server, user: str, password: str) -> bool:
    with imaplib.IMAP4(server.host, server.port("imap")) as imap:
        imap.starttls()
        try:
            imap.login(user, password)
        except imaplib.IMAP4.error:
            return False
        imap.logout()
        return True


def _pop3_login(server, user: str, password: str) -> bool:
    pop = poplib.POP3(server.host, server.port("pop3"))
    try:
        pop.stls()
        pop.user(user)
        pop.pass_(password)
        return True
    except poplib.error_proto:
        return False
    finally:
        pop.quit()


def test_bind_checks_passwords_over_starttls_ldaps_and_a_dn_template(slapd):
    search = Ldap(url=slapd.url, start_tls=True, ca_file=slapd.cert, base_dn=SUFFIX, bind_dn=ADMIN_DN,
                  bind_password=ADMIN_PASSWORD)
    assert check_password(search, "annv@example.gov.vn", AN_PASSWORD)
    assert not check_password(search, "annv@example.gov.vn", "wrong")
    assert not check_password(search, "annv@example.gov.vn", "")  # an unauthenticated bind is no login
    assert not check_password(search, "nobody@example.gov.vn", AN_PASSWORD)
    assert check_password(search, "dungpt@example.gov.vn", DUNG_PASSWORD)
    # typed decomposed (R-TEXT-1): ldap3 prepares the password (SASLprep, RFC 4013) before the bind
    assert check_password(search, "dungpt@example.gov.vn", unicodedata.normalize("NFD", DUNG_PASSWORD))
    ldaps = Ldap(url=slapd.ldaps_url, ca_file=slapd.cert, base_dn=SUFFIX)
    assert check_password(ldaps, "annv@example.gov.vn", AN_PASSWORD)
    template = Ldap(url=slapd.url, user_dn_template="uid={local},ou=vp," + SUFFIX)
    assert check_password(template, "annv@example.gov.vn", AN_PASSWORD)
    untrusted = Ldap(url=slapd.ldaps_url, base_dn=SUFFIX)  # the self-signed certificate is not trusted
    assert not check_password(untrusted, "annv@example.gov.vn", AN_PASSWORD)


def test_sync_creates_people_and_units_then_locks_and_unlocks(own_slapd, make_server):
    slapd = own_slapd
    server = make_server(_ldap_config(slapd))
    preview = server.cli("ldap", "sync", "--dry-run").stdout
    assert "create-unit" in preview and "annv@example.gov.vn" in preview
    assert "cuonglv" not in preview  # disabled in the directory: not created
    store = server.open_store()
    try:
        assert store.accounts.get_account("annv@example.gov.vn") is None  # a dry run changes nothing
    finally:
        store.close()

    out = server.cli("ldap", "sync").stdout
    assert "changed" in out
    store = server.open_store()
    try:
        an = store.accounts.get_account("annv@example.gov.vn")
        assert an is not None and an.password_hash == LDAP_MARK + AN_DN and an.state == "active"
        binh = store.accounts.get_account("binhtt@example.gov.vn")  # the profile's rule (R-ADDR-1 form)
        assert binh is not None and binh.display_name == "Trần Thị Bình", out
        dung = store.accounts.get_account("dungpt@example.gov.vn")
        assert dung is not None and dung.display_name == unicodedata.normalize("NFC", DUNG_NFD)  # R-TEXT-1
        assert store.accounts.get_account("cuonglv@example.gov.vn") is None
        units = {u.code: u for u in store.org.list_units()}
        assert set(units) >= {"vp", "tccb"} and units["tccb"].parent_id == units["vp"].id
        assert units["vp"].name == "Văn phòng Bộ"
        assert store.org.get_profile(binh.id).unit_id == units["tccb"].id  # the unit above the entry
        assert store.org.get_profile(dung.id).unit_id == units["tccb"].id  # departmentNumber
    finally:
        store.close()
    again = server.cli("ldap", "sync", "--dry-run").stdout
    assert "create" not in again and "would change 0" in again  # nothing left to do

    assert _imap_login(server, "annv@example.gov.vn", AN_PASSWORD)
    assert not _imap_login(server, "annv@example.gov.vn", "MatKhau-sai-2026")
    assert _pop3_login(server, "binhtt@example.gov.vn", BINH_PASSWORD)
    assert "login protocol=imap client=127.0.0.1 result=fail reason=credentials" in server.log()

    slapd.modify(AN_DN, employeeType="disabled")
    slapd.delete(BINH_DN)
    out = server.cli("ldap", "sync").stdout
    assert "lock" in out and "disabled in the directory" in out and "no longer in the directory" in out
    assert not _imap_login(server, "annv@example.gov.vn", AN_PASSWORD)  # locked (R-ACC-2)
    store = server.open_store()
    try:
        assert store.accounts.get_account("annv@example.gov.vn").state == "locked"
        assert store.accounts.get_account("binhtt@example.gov.vn").state == "locked"
    finally:
        store.close()

    slapd.modify(AN_DN, employeeType="staff")
    out = server.cli("ldap", "sync").stdout
    assert "unlock" in out and "annv@example.gov.vn" in out
    assert _imap_login(server, "annv@example.gov.vn", AN_PASSWORD)


def test_sync_without_a_directory_is_refused_in_one_line(make_server):
    server = make_server(start=False)
    result = server.cli("ldap", "sync", check=False)
    assert result.returncode == 1 and "ldap.url is not set" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_directory_is_one_line(make_server):
    server = make_server({"ldap": {"url": "ldap://127.0.0.1:9", "timeout": 2}}, start=False)
    result = server.cli("ldap", "sync", check=False)
    assert result.returncode == 1 and result.stderr.startswith("Error: directory: ldap://127.0.0.1:9")
