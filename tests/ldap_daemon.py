"""A private OpenLDAP ``slapd`` for the LDAP tests (R-PROTO-3): its own temporary directory, an
MDB database, a self-signed certificate (StartTLS and ldaps on a second port) and a Vietnamese
tree loaded with ``slapadd`` before it starts. A missing slapd skips, which tests/conftest.py
turns into a failure under CI=true (the Makefile installs it)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import mailserver.directory_sync  # noqa: F401  (loads ldap3 without its pyasn1 deprecation warning)
from tests.filter_daemons import Daemon, _binary, free_port

SUFFIX = "dc=molisa,dc=gov,dc=vn"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "Quản-trị-2026"
SCHEMAS = ("core", "cosine", "inetorgperson")

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {root}/slapd.pid
TLSCertificateFile {root}/cert.pem
TLSCertificateKeyFile {root}/key.pem
database mdb
suffix "{suffix}"
rootdn "{admin}"
rootpw {admin_password}
directory {root}/db
maxsize 104857600
access to attrs=userPassword by self auth by anonymous auth by * none
access to * by * read
"""


def tree(people: list[tuple[str, str, str, str | None, str | None, str]]) -> str:
    """LDIF of the test tree: two units (one inside the other) and ``people``:
    (uid, cn, password, mail, departmentNumber, employeeType)."""
    out = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: molisa\no: Bộ Lao động - Thương binh và Xã hội\n",
        f"dn: ou=vp,{SUFFIX}\nobjectClass: organizationalUnit\nou: vp\ndescription: Văn phòng Bộ\n",
        f"dn: ou=tccb,ou=vp,{SUFFIX}\nobjectClass: organizationalUnit\nou: tccb\ndescription: Phòng Tổ chức cán bộ\n",
    ]
    for uid, cn, password, mail, dept, etype in people:
        parent = f"ou=tccb,ou=vp,{SUFFIX}" if dept is None else f"ou=vp,{SUFFIX}"
        family = cn.split()[0]
        lines = [f"dn: uid={uid},{parent}", "objectClass: inetOrgPerson", f"uid: {uid}", f"cn: {cn}",
                 f"sn: {family}", f"displayName: {cn}", f"userPassword: {password}", f"employeeType: {etype}"]
        if mail:
            lines.append(f"mail: {mail}")
        if dept:
            lines.append(f"departmentNumber: {dept}")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


class Slapd:
    def __init__(self, ldif: str) -> None:
        slapd, slapadd = _binary("slapd"), _binary("slapadd")
        from mailserver.maintenance.tls import ensure_certificate

        self.root = Path(tempfile.mkdtemp(prefix="slapd-"))
        (self.root / "db").mkdir()
        self.cert = self.root / "cert.pem"
        ensure_certificate(self.cert, self.root / "key.pem", "127.0.0.1")
        conf = self.root / "slapd.conf"
        conf.write_text(SLAPD_CONF.format(root=self.root, suffix=SUFFIX, admin=ADMIN_DN, admin_password=ADMIN_PASSWORD),
                        encoding="utf-8")
        (self.root / "tree.ldif").write_text(ldif, encoding="utf-8")
        subprocess.run([slapadd, "-f", str(conf), "-l", str(self.root / "tree.ldif")], check=True,
                       capture_output=True, timeout=60)
        self.port, self.ldaps_port = free_port(), free_port()
        urls = f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.ldaps_port}/"
        try:
            self.daemon = Daemon([slapd, "-d", "0", "-h", urls, "-f", str(conf)], self.port, self.root)
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    def modify(self, dn: str, **replace: str) -> None:
        """Change an entry as the directory's administrator (a person disabled, a mail changed)."""
        from ldap3 import MODIFY_REPLACE

        conn = self._admin()
        try:
            assert conn.modify(dn, {k: [(MODIFY_REPLACE, [v])] for k, v in replace.items()}), conn.result
        finally:
            conn.unbind()

    def delete(self, dn: str) -> None:
        conn = self._admin()
        try:
            assert conn.delete(dn), conn.result
        finally:
            conn.unbind()

    def _admin(self):
        # not ``with Connection(...)``: ldap3's context manager leaves a connection bound before it open
        from ldap3 import Connection, Server

        return Connection(Server(self.url), ADMIN_DN, ADMIN_PASSWORD, auto_bind=True)

    def stop(self) -> None:
        self.daemon.stop()
