"""A private Dovecot (``dovecot -F -c <dir>/dovecot.conf``) on free loopback ports.

Everything lives in one temporary directory: configuration, base_dir (sockets, pid), state_dir,
log, passwd-file and the sdbox mail store. A system Dovecot (Debian starts one on 143/993) is
neither used nor disturbed: other base_dir, other ports. Run as root, mail processes run as
``nobody``; run as another user, every Dovecot process runs as that user.

The folder layout follows ours (storage/api.py DEFAULT_FOLDERS, imap/cmd_folders.py NAMESPACE):
one personal namespace with prefix "" and separator "/", INBOX, and Sent, Drafts, Trash, Junk
auto-created and subscribed with their RFC 6154 special-use attributes. sdbox keeps the
hierarchy as directories, so "." is an ordinary character in names, as in ours.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

def _find_dovecot() -> str | None:
    override = os.environ.get("IMAPDIFF_DOVECOT")  # a path; a missing one counts as not installed
    if override:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/sbin")


DOVECOT = _find_dovecot()

#: Ours creates these for every account, subscribed (storage/api.py DEFAULT_FOLDERS).
SPECIAL_FOLDERS = (("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"), ("Junk", "\\Junk"))


def _mailboxes() -> str:
    # ours subscribes INBOX too
    return "  mailbox INBOX {\n    auto = subscribe\n  }\n" + "\n".join(
        f"  mailbox {name} {{\n    special_use = {use}\n    auto = subscribe\n  }}" for name, use in SPECIAL_FOLDERS
    )


class Dovecot:
    host = "127.0.0.1"

    def __init__(self, port: int) -> None:
        self.port = port
        # Not under pytest's tmp_path: its parents are 0700 root, and Dovecot's unprivileged
        # processes (login, mail) must reach their sockets and the mail store.
        self.dir = Path(tempfile.mkdtemp(prefix="imapdiff-dovecot-"))
        os.chmod(self.dir, 0o755)
        self.mail_dir = self.dir / "mail"
        self.mail_dir.mkdir()
        self.passwd = self.dir / "users"
        self.passwd.write_text("")
        os.chmod(self.passwd, 0o644)
        self.log_path = self.dir / "dovecot.log"
        if os.geteuid() == 0:
            user = pwd.getpwnam("nobody")
            self.uid, self.gid = user.pw_uid, user.pw_gid
            group = grp.getgrgid(self.gid).gr_name
            users = ""  # defaults: dovecot / dovenull
            os.chown(self.mail_dir, self.uid, self.gid)
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
            me = pwd.getpwuid(self.uid).pw_name
            group = grp.getgrgid(self.gid).gr_name
            users = f"default_internal_user = {me}\ndefault_login_user = {me}\n"
        self.mail_user = pwd.getpwuid(self.uid).pw_name
        self.mail_group = group
        self.config_path = self.dir / "dovecot.conf"
        self.config_path.write_text(self.config(users))
        self.proc: subprocess.Popen | None = None

    def config(self, users: str) -> str:
        d = self.dir
        return f"""# private Dovecot for tests/test_imap_differential.py
protocols = imap
listen = {self.host}
base_dir = {d}/run
state_dir = {d}/state
instance_name = imapdiff-{self.port}
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
debug_log_path = {d}/dovecot.log
{users}ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_uid = {self.mail_user}
mail_gid = {self.mail_group}
first_valid_uid = {self.uid}
last_valid_uid = {self.uid}
first_valid_gid = {self.gid}
last_valid_gid = {self.gid}
mail_location = sdbox:~/mail
mail_fsync = never
shutdown_clients = yes
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd}
}}
namespace inbox {{
  type = private
  separator = /
  prefix =
  inbox = yes
{_mailboxes()}
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""

    def add_user(self, address: str, password: str) -> None:
        home = self.mail_dir / address
        with self.passwd.open("a") as f:
            f.write(f"{address}:{{PLAIN}}{password}:{self.uid}:{self.gid}::{home}::\n")

    def start(self, timeout: float = 20) -> None:
        with open(self.dir / "stdout.log", "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dovecot did not open port {self.port}:\n{self.log()}")
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex((self.host, self.port)) == 0:
                    try:
                        if s.recv(100).startswith(b"* OK"):
                            return
                    except OSError:
                        pass
            time.sleep(0.05)

    def log(self) -> str:
        out = []
        for name in ("stdout.log", "dovecot.log"):
            p = self.dir / name
            if p.exists():
                out.append(p.read_text(errors="replace"))
        return "\n".join(out)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
