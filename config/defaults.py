"""The commented configuration file that ``mailserver init`` writes.

Active keys are the ones every installation sets. Lines starting with ``#`` directly followed by
a key (``#limits:``, ``#  max_message_size: 40MiB``) are settings left at their default (or at the
profile's value): remove the ``#`` to change one. ``# `` + text is explanation. The tests
uncomment every setting and load the result, so this text cannot drift from ``Settings``.
"""

from __future__ import annotations

import posixpath
import re
from string import Template

import yaml

# Unprivileged ports so the server runs as a normal user; the standard ports are listed beside.
DEFAULT_PORTS = {
    "smtp": 2525, "submission": 2587, "submissions": 2465,
    "imap": 1143, "imaps": 1993, "pop3": 1110, "pop3s": 1995, "web": 8443,
}
STANDARD_PORTS = {
    "smtp": 25, "submission": 587, "submissions": 465,
    "imap": 143, "imaps": 993, "pop3": 110, "pop3s": 995, "web": 443,
}

_TEMPLATE = Template("""\
# Mail server configuration, written by `mailserver init`.
# Layers, lowest first: built-in defaults → the profile below (config/profiles/<name>.yaml)
# → this file → command-line flags. A key set here wins over the profile.
# Relative paths are relative to the directory of this file.
# Check the file with: mailserver --config <this file> config check

# Regulation preset: molisa | lamdong | most | moj | hcm-q4 | none. It sets quotas (R-QUOTA-1),
# password rules (R-PASS-*), account lifecycle (R-LIFE-*) and the address rule (R-ADDR-*).
profile: $profile

# The name this server gives in SMTP greetings and in its TLS certificate.
hostname: $hostname

# Mail domains delivered locally. Accounts can only be created in these domains.
domains: [$domains]

# Where the database, message bodies and certificates live (here: next to this file).
data_dir: $data_dir

database:
  # sqlite:///mail.db (one process; relative to this file) or postgresql://user@host/db
  # (PostgreSQL: several server processes or hosts may share it).
  url: $db_url
  # Bodies of at least this size are kept as separate files on SQLite, smaller ones inline.
#  inline_blob_limit: 256KiB
  # Most write jobs one database commit takes at once (group commit).
#  max_batch: 256

# Network services. Remove (or set to null) a line to turn that service off.
# Defaults are unprivileged ports on loopback; to serve the world use address 0.0.0.0 and the
# standard ports (25, 587, 465, 143, 993, 110, 995), which need root or CAP_NET_BIND_SERVICE.
listeners:
  smtp:        {address: $listen, port: $smtp}   # incoming mail from other servers (standard 25)
  submission:  {address: $listen, port: $submission}   # users send mail: STARTTLS + AUTH (standard 587)
  submissions: {address: $listen, port: $submissions}   # users send mail: implicit TLS + AUTH (standard 465)
  imap:        {address: $listen, port: $imap}   # IMAP4 with STARTTLS (standard 143)
  imaps:       {address: $listen, port: $imaps}   # IMAP4 over implicit TLS (standard 993)
  pop3:        {address: $listen, port: $pop3}   # POP3 with STLS (standard 110)
  pop3s:       {address: $listen, port: $pop3s}   # POP3 over implicit TLS (standard 995)
  web:         {address: $listen, port: $web}   # self-service portal, HTTPS: /password, /healthz (see web:)

tls:
  # PEM files. init created a self-signed pair; replace them with your CA-issued certificate.
  cert: $cert
  key: $key
  # Allow LOGIN / AUTH PLAIN without TLS from loopback addresses only (local tools, tests).
#  allow_plaintext_auth_on_loopback: true
  # R-SEC-1: intermediate (TLS 1.2 with forward-secret ciphers, and 1.3) or modern (TLS 1.3 only).
#  policy: intermediate

# Static next hops for outbound mail, tried before the MX look-up.
#routes:
#  other.gov.vn: 10.1.2.3:25
#  "*": relay.example.gov.vn:25

# Sizes accept a byte count (20000000) or 512KB, 20M, 20 MB, 20MiB, 2GB, 1.5GiB; K/KB/KiB,
# M/MB/MiB and G/GB/GiB are the same binary units, as mail systems count them (R-QUOTA-1).
#quota:
  # Capacity of a mailbox; null = unlimited. An account's own quota overrides it.
#  mailbox: 2GiB
  # Decoded attachment content per message.
#  attachment: 20MiB
  # Percent of the mailbox limit at which the owner gets one notice per crossing (a unit
  # mailbox: also its head and delegates); [] = no notices.
#  thresholds: [80, 90, 100]
  # Special limits by name, given with `mailserver quota class ADDRESS NAME` to a unit (applies
  # to its mailbox and staff) or an account, e.g. lanh-dao: {mailbox: 10GiB, attachment: 30MiB}.
#  classes: {}

# R-QUOTA-2: old mail is expunged every day at run_at (server local time; null = only by
# `mailserver retention run`). folder: a name (Archive/2019), a special use (\\Junk, \\Trash,
# whatever the user named it) or "*"; older_than: days (30d) or months (6m) since arrival.
#retention:
#  rules:
#    - {folder: "\\\\Junk", older_than: 30d}
#    - {folder: "\\\\Trash", older_than: 30d}
#  run_at: "02:30"
  # Folders no rule touches, as ADDRESS/FOLDER: a unit's archive the agency keeps (R-BOX-2).
#  keep: []
  # Days ahead the owner is told what a rule on their own folders will delete (null = never).
#  notice_days: 7

#limits:
  # Largest whole message accepted (SMTP SIZE, IMAP APPENDLIMIT).
#  max_message_size: 40MiB
#  max_recipients: 1000
  # SMTP DATA is kept in memory below this size and spooled to disk above it.
#  smtp_spool_threshold: 1MiB
#  imap_max_literal: 64MiB
#  imap_max_line: 64KiB
  # Idle seconds before a connection is closed: IMAP before and after login, SMTP.
#  imap_autologout_unauth: 60
#  imap_autologout: 1800
  # Seconds without a new commit before IMAP renders ENVELOPE/BODYSTRUCTURE of new mail ahead of
  # the first FETCH (0: never; the first FETCH then renders them).
#  imap_prerender_quiet: 5
#  pop3_autologout: 600           # POP3 idle seconds before the session is closed (RFC 1939: >= 600)
#  smtp_timeout: 300
  # Seconds between checks that logged-in IMAP/POP3 sessions may stay: a session whose account
  # was revoked, locked or deleted, or whose password was reset since login, is ended.
#  session_recheck: 15
  # MIME parts nested deeper than this are not split: one opaque part in IMAP's BODYSTRUCTURE,
  # counted whole against the attachment limit. Real mail nests a few levels.
#  mime_max_depth: 32

# Password guessing and abuse (R-SEC-1), the same for IMAP, POP3, submission and the portal.
# Failed logins are counted per client address (IPv6: its /64) and per account name: each failure
# delays that address's next answer more (delay_first doubling to delay_max seconds), and the
# failure answers of that account; past block_after failures the address is refused unchecked for
# block_seconds. The owner's right password from another address is never refused.
#guard:
#  delay_first: 2.0
#  delay_max: 15.0
#  block_after: 10
#  block_seconds: 900
#  forget_after: 3600
#  max_entries: 1000000
  # Clients never delayed, blocked or limited (webmail, monitoring). Loopback is not trusted.
#  trusted: []
#  connections_per_address: 300
#  imap_sessions_per_account: 50
#  smtp_commands_per_session: 10000
#  smtp_bad_commands_per_session: 20
  # Per authenticated account and clock hour; then 451 and a notice to the unit and postmaster.
#  submission_messages_per_hour: 500
#  submission_recipients_per_hour: 2000

# HAProxy's PROXY protocol (v1, v2): connections from these addresses start with a PROXY header
# naming the real client (smtp, submission, imap, imaps, pop3, pop3s; not submissions).
#proxy:
#  trusted: []
#  timeout: 10.0

#passwords:
  # argon2id cost; these take about 25 ms per login on a 2-core host.
#  time_cost: 2
#  memory_cost: 19456
#  parallelism: 1
  # Seconds a successful login is remembered, so reconnecting clients do not pay again.
#  cache_seconds: 300
  # R-PASS-2/3: length, and how many of upper/lower/digit/special a password needs.
#  min_length: 8
#  min_classes: 3
#  reject_account_name: true
  # R-PASS-1: hours to change the initial password (null = at first login, no deadline).
#  initial_change_hours: null
  # R-PASS-3: lock an account still on its initial password this many hours after its first login.
#  first_login_grace_hours: null
  # R-PASS-3: days before an unlock request is handled.
#  unlock_wait_days: null
  # R-PASS-3/4: months after which a password must be changed (null = never).
#  max_age_months: null

# How `account add` derives an address from a name when --address is not given: molisa
# (R-ADDR-1: annv, anngva, annv1), lamdong (R-ADDR-2: annv, annv2), hcm-q4 (R-ADDR-3: annv.q4);
# most, moj and none use the molisa form. Set by the profile.
#address_rule: none

# Account lifecycle (R-LIFE-*): null turns a rule off. Inactivity counts from the last login,
# creation or operator unlock/re-issue, whichever is latest. The server applies the rules every
# day at run_at (server local time, e.g. "03:00"; null = only by `mailserver lifecycle run`).
# Off by default, because the profile's initial-password deadlines (R-PASS-1 molisa 24 h, R-PASS-3
# hcm-q4) lock accounts: turn it on once users know they change their own password on the
# portal's /password page (listeners.web). `mailserver compliance` reports it while it is off.
#lifecycle:
#  revoke_after_notice_days: null
#  lock_after_inactive_months: null
#  revoke_after_inactive_months: null
#  delete_after_inactive_months: null
#  leaver_revoke_months: null
#  leaver_revoke_max_months: null
#  notify_unit: false
#  run_at: null

# Outgoing mail queue (to other servers). Durations in seconds.
#queue:
  # After a temporary failure: first retry, doubling up to retry_max; failure notice after give_up_after.
#  retry_first: 300
#  retry_max: 14400
#  give_up_after: 432000
  # One "still trying" notice to the sender after this long (null = never).
#  delay_warning_after: 14400
  # Connections at once: in total, and to one destination domain.
#  concurrency: 20
#  per_domain: 10
#  poll: 30
#  lease: 1800
  # STARTTLS is used whenever offered; true also refuses certificates that do not verify.
#  verify_certificates: false
  # Extra CA certificates (PEM file) trusted when a certificate must verify (REQUIRETLS mail).
#  ca_file: null
  # DANE (RFC 7672): MX hosts with DNSSEC-validated TLSA records need STARTTLS and a matching
  # certificate. Needs a validating resolver in dns.nameservers (its AD bit is trusted).
#  dane: true
  # RFC 5321 timeouts: connection and greeting, each command, DATA until the final reply.
#  connect_timeout: 300
#  command_timeout: 300
#  data_timeout: 600
  # Per destination: require STARTTLS, fewer or more connections.
#  domains:
#    other.gov.vn: {require_tls: true, connections: 2}

# DKIM signing of outgoing mail (R-SEC-2). Keys: <data_dir>/dkim/<domain>.<selector>.key,
# made by `mailserver dkim keygen DOMAIN`, which prints the DNS record to publish.
#dkim:
#  sign: true
#  selector: mail
  # Key rotation: keygen --selector NEW, publish it, then point the domain at it here.
#  selectors: {}
  # A second signature with Ed25519 (RFC 8463) once `mailserver dkim keygen DOMAIN --type ed25519`
  # made its key; null: never. Must differ from the RSA selector.
#  ed25519_selector: ed25519
#  ed25519_selectors: {}

# DNS for outgoing mail (MX), SPF and DKIM checks. Fixed answers here win over DNS; with
# static_only the network is never asked (isolated networks).
#dns:
#  static: {}
#  static_only: false
#  nameservers: []
#  timeout: 5.0

# Content filters of incoming mail (R-SEC-1); each is off until configured. on_failure: what a
# filter that does not answer in time means: accept (deliver, marked X-Filter-Unscanned) or
# tempfail (451 4.7.1, the sender retries). DMARC of other domains is applied to incoming mail.
#filters:
#  spamd: {host: 127.0.0.1, port: 783, socket: null, timeout: 30, junk_score: 5, reject_score: 15, max_size: 512KiB, on_failure: accept}
#  clamd: {host: 127.0.0.1, port: 3310, socket: null, timeout: 60, max_size: 25MiB, on_failure: tempfail}
#  milters: []                  # [{name: rspamd, host: 127.0.0.1, port: 11332, timeout: 30, on_failure: tempfail}]
#  dmarc: {enabled: true, reject: true, quarantine: true}
#  junk_folder: Junk

# The accounts that receive postmaster@ and abuse@ of every local domain (RFC 5321 4.5.1).
#role_addresses:
#  postmaster: null
#  abuse: null

#search:
  # Match Vietnamese text with or without diacritics (tiếng = tieng).
#  fold_diacritics: true

# The portal on listeners.web: users change their password there (R-PASS-1..4).
#web:
  # HTTPS with the certificate above; false only behind a TLS-terminating proxy on loopback.
#  tls: true
  # R-DIR-1: also serve the e-mail directory of every active address at /danh-ba.
#  publish_directory: false
#  directory_title: "Danh bạ thư điện tử"
  # The portal as users reach it behind a proxy (IMAP alerts point there); default https://hostname:port.
#  public_url: null
  # Networks that may read /metrics (account and queue figures for monitoring).
#  metrics_from: [127.0.0.0/8, "::1/128"]

# The server's log: level, text or json (one object per line), stderr or a file (reopened on SIGHUP).
#logging:
#  level: INFO
#  format: text
#  file: null

# R-SEC-4: a verified backup every day at this local time into dir/<date-time>, with rotation.
#backup:
#  schedule: null                # e.g. "01:30"
#  dir: null                     # e.g. /var/backups/mailserver (outside the data directory)
#  keep_daily: 7
#  keep_weekly: 4

# R-PROTO-3: accounts backed by the agency's LDAP directory (`mailserver ldap sync`).
#ldap:
#  url: null                     # ldap://ldap.example.gov.vn or ldaps://…
#  start_tls: false
#  ca_file: null
#  bind_dn: null
#  bind_password: null
#  base_dn: ""
#  user_dn_template: null        # e.g. "uid={local},ou=people,dc=example,dc=gov,dc=vn"
#  disabled_filter: "(pwdAccountLockedTime=*)"
#  sync_at: null                 # e.g. "03:00"
""")


def render_config(*, profile: str, hostname: str, domains: list[str], data_dir: str = ".",
                  listen: str = "127.0.0.1", ports: dict[str, int] | None = None) -> str:
    """The text of a fresh configuration file. ``data_dir`` is written as given (relative to the
    file); ``ports`` overrides entries of ``DEFAULT_PORTS``."""
    chosen = {**DEFAULT_PORTS, **(ports or {})}

    def inside(name: str) -> str:
        return _yaml_str(posixpath.normpath(posixpath.join(data_dir, name)))

    text = _TEMPLATE.substitute(
        profile=profile, hostname=hostname, domains=", ".join(domains), data_dir=_yaml_str(data_dir),
        db_url=_yaml_str("sqlite:///" + posixpath.normpath(posixpath.join(data_dir, "mail.db"))),
        cert=inside("tls/cert.pem"), key=inside("tls/key.pem"),
        listen=listen, **{name: str(port) for name, port in chosen.items()},
    )
    return _with_profile_values(text, profile)


_COMMENTED = re.compile(r"^#(?P<indent>  )?(?P<key>[a-z_]+):(?P<value> .*)?$")


def _with_profile_values(text: str, profile: str) -> str:
    """Commented-out settings show the profile's value where it sets one (``#  min_classes: 4``
    under hcm-q4), so the file tells the operator what is in force, not the built-in default."""
    from config.loader import PROFILE_DIR

    data = yaml.safe_load((PROFILE_DIR / f"{profile}.yaml").read_text("utf-8")) or {}
    out, section, skipping = [], None, False
    for line in text.split("\n"):
        if skipping and line.startswith("#    - "):
            continue  # the built-in items of a list the profile replaced
        skipping = False
        m = _COMMENTED.match(line)
        if m and section and isinstance(data.get(section), dict) and isinstance(data[section].get(m.group("key")), list):
            out.append(f"#  {m.group('key')}:  # profile {profile}")
            out += [f"#    - {_flow(item)}" for item in data[section][m.group("key")]]
            skipping = True
            continue
        if m and not m.group("indent"):
            section = m.group("key") if not m.group("value") else None
            if m.group("value") and m.group("key") in data and not isinstance(data[m.group("key")], (dict, list)):
                line = f"#{m.group('key')}: {_flow(data[m.group('key')])}"
        elif m and section and isinstance(data.get(section), dict) and m.group("key") in data[section]:
            line = f"#  {m.group('key')}: {_flow(data[section][m.group('key')])}  # profile {profile}"
        elif line and not line.startswith(("#", " ")):
            section = None
        out.append(line)
    return "\n".join(out)


def _flow(value: object) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def _yaml_str(value: str) -> str:
    """Quote a path only when YAML would read it as something other than that string."""
    plain = yaml.safe_dump(value, default_flow_style=True).strip()
    return plain.removesuffix("\n...").strip()
