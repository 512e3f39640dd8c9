"""Typed, frozen settings. Parsed once from YAML (config/loader.py) and handed to each package
as its slice; no module reads a global config (explicit inputs, easy to test).

Unknown keys are refused (``extra="forbid"``) so a typo in an operator's file stops start-up with
the key path instead of being silently ignored.
"""

from __future__ import annotations

import re
import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, IPvAnyNetwork, model_validator
from pydantic_core import PydanticCustomError

from config.agency import Agency, check_logo
from config.reports import Reports
from config.maintenance import Maintenance
from config.classified import Classified
from config.accounts import AccountChanges
from config.filters import Filters, RoleAddresses
from config.names import check_domain
from config.backup import Backup
from config.ldap import Ldap
from config.logs import Logging
from config.mtasts import MtaSts
from config.sieve import Sieve
from config.sizes import parse_size


def _byte_size(value: object) -> object:
    """A size in the one grammar of ``config/sizes.py``; null stays null (unlimited)."""
    if value is None:
        return None
    try:
        return parse_size(value)  # type: ignore[arg-type]
    except ValueError as exc:
        raise PydanticCustomError("byte_size", "{reason}", {"reason": str(exc)}) from None


#: A byte count; YAML may give it as ``20MB``, ``20M``, ``2 GiB``, ``1.5GiB`` or ``20000000``.
ByteSize = Annotated[int, BeforeValidator(_byte_size), Field(ge=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Listener(_Frozen):
    address: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)


class Listeners(_Frozen):
    """A listener that is omitted (or null) is turned off."""

    smtp: Listener | None = None
    submission: Listener | None = None
    submissions: Listener | None = None
    imap: Listener | None = None
    imaps: Listener | None = None
    pop3: Listener | None = None
    pop3s: Listener | None = None
    web: Listener | None = None
    managesieve: Listener | None = None  # RFC 5804 filter editing (standard 4190); off unless set


class Database(_Frozen):
    url: str = "sqlite:///data/mail.db"
    # Bodies at or above this size are kept as fsynced files on SQLite (inline below it).
    inline_blob_limit: ByteSize = 256 * 1024
    # Most write jobs one group commit takes from the queue.
    max_batch: int = 256


class TLS(_Frozen):
    cert: Path = Path("data/tls/cert.pem")
    key: Path = Path("data/tls/key.pem")
    # LOGIN / AUTH PLAIN in clear text is refused except from loopback addresses when true.
    allow_plaintext_auth_on_loopback: bool = True
    # R-SEC-1: Mozilla's server-side TLS levels (mailserver/tlspolicy.py): "intermediate" = TLS 1.2
    # with forward-secret AEAD ciphers only, and TLS 1.3; "modern" = TLS 1.3 only.
    policy: Literal["intermediate", "modern"] = "intermediate"


class Limits(_Frozen):
    max_message_size: ByteSize = 40 * 1024 * 1024  # whole message, bytes (SMTP SIZE, IMAP APPENDLIMIT)
    max_recipients: int = 1000
    smtp_spool_threshold: ByteSize = 1024 * 1024  # DATA kept in memory below this, spooled to disk above
    imap_max_literal: ByteSize = 64 * 1024 * 1024
    imap_max_line: ByteSize = 64 * 1024
    imap_autologout_unauth: int = 60  # seconds, before LOGIN
    imap_autologout: int = 30 * 60  # seconds, after LOGIN (RFC 3501: at least 30 minutes)
    # seconds without a commit before IMAP renders ENVELOPE/BODYSTRUCTURE of new mail ahead of
    # the first FETCH (imap/prerender.py); 0: never ahead, the first FETCH renders
    imap_prerender_quiet: float = Field(default=5.0, ge=0)
    smtp_timeout: int = 300
    pop3_autologout: int = Field(default=600, ge=600)  # seconds; RFC 1939 requires at least 10 minutes
    # seconds between checks that logged-in IMAP/POP3 sessions' accounts may still log in
    # (not revoked, locked, deleted, password not reset); the session is ended otherwise
    session_recheck: float = Field(default=15, gt=0, le=3600)
    # MIME parts nested deeper than this are not split: read as one opaque body (stored metadata,
    # IMAP BODYSTRUCTURE) and counted whole as attachment bytes (R-QUOTA-1). Parsers recurse over
    # the tree; real mail nests a few levels.
    mime_max_depth: int = Field(default=32, ge=1, le=64)


class Passwords(_Frozen):
    """argon2id parameters (R-PASS-*). Defaults chosen for a 2-core host: ~25 ms per verify."""

    time_cost: int = 2
    memory_cost: int = 19 * 1024  # KiB
    parallelism: int = 1
    cache_seconds: int = 300  # successful verifications remembered (like Dovecot's auth cache)
    min_length: int = 8  # R-PASS-2/3
    min_classes: int = Field(default=3, ge=1, le=4)  # of upper, lower, digit, special: R-PASS-2 3, R-PASS-3 4
    reject_account_name: bool = True  # R-PASS-2: the password may not equal the account name
    # R-PASS-1 (molisa): the initial password must be changed within this many hours; null = no deadline.
    initial_change_hours: int | None = Field(default=None, ge=1)
    # R-PASS-3 (hcm-q4): an account that logged in but kept its initial password this many hours
    # later is locked (the seed says "not changed at first login"); null = rule off.
    first_login_grace_hours: int | None = Field(default=None, ge=0)
    # R-PASS-3 (hcm-q4): an unlock request is handled only this many days after the lock.
    unlock_wait_days: int | None = Field(default=None, ge=0)
    # R-PASS-3/4: passwords must be changed every this many months; null = no periodic change.
    max_age_months: int | None = Field(default=None, ge=1)
    # A new password must differ from the current one and the ones before it, this many in all
    # (the portal and `account passwd --password`); 0 = only from the current one (the portal's rule).
    history: int = Field(default=0, ge=0, le=24)
    # R-PASS-4: `lifecycle run` mails the owner (Vietnamese, then English) this many days before
    # the password reaches max_age_months; null = no warning.
    expiry_warning_days: int | None = Field(default=None, ge=1)
    # R-PASS-1 at the protocol level: an account on its initial password may log in to the portal
    # only (IMAP NO [EXPIRED], POP3 -ERR [AUTH], submission 535 5.7.8, each naming the portal),
    # after initial_change_grace_hours from when the password was set (null: at once).
    enforce_initial_change: bool = False
    initial_change_grace_hours: int | None = Field(default=None, ge=0)


class QuotaClass(_Frozen):
    """Limits of a class of mailboxes (R-QUOTA-1 "special cases get their own limits"), given to a
    unit (its mailbox and its staff) or an account with ``mailserver quota class``. Only the keys
    written here replace the profile's; null = unlimited."""

    mailbox: ByteSize | None = None
    attachment: ByteSize | None = None

    def layer(self) -> dict[str, int | None]:
        """The keys the operator wrote, as ``quota.resolve_limits`` takes them."""
        names = {"mailbox": "mailbox_bytes", "attachment": "attachment_bytes"}
        return {names[k]: getattr(self, k) for k in self.model_fields_set if k in names}


def _thresholds(value: object) -> object:
    if isinstance(value, (list, tuple)):
        if any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 100 for v in value):
            raise PydanticCustomError("thresholds", "expected percentages from 1 to 100, got {got}", {"got": repr(value)})
        return tuple(sorted(set(value)))
    return value


class Quota(_Frozen):
    """R-QUOTA-1 limits; an account's own ``quota_bytes`` overrides ``mailbox``. null = unlimited."""

    mailbox: ByteSize | None = 2 * 1024**3
    attachment: ByteSize | None = 20 * 1024**2  # decoded attachment content per message
    # Percentages of the mailbox limit at which the owner (of a unit mailbox: also its head and
    # delegates) gets one notice per crossing; [] = no notices.
    thresholds: Annotated[tuple[int, ...], BeforeValidator(_thresholds)] = (80, 90, 100)
    classes: dict[str, QuotaClass] = {}


_PERIOD_RE = re.compile(r"^\s*(\d+)\s*(d|days?|m|months?)\s*$", re.IGNORECASE)
_RUN_AT_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _period(value: object) -> object:
    if isinstance(value, str) and _PERIOD_RE.match(value):
        return value.strip().lower()
    raise PydanticCustomError("period", "expected a period such as 30d or 6m (days, months), got {got}", {"got": repr(value)})


def _run_at(value: object) -> object:
    if value is None or (isinstance(value, str) and _RUN_AT_RE.match(value.strip())):
        return value.strip() if isinstance(value, str) else value
    raise PydanticCustomError("run_at", "expected a local time HH:MM such as 02:30, or null, got {got}", {"got": repr(value)})


def _kept_folder(value: object) -> object:
    if isinstance(value, str):
        address, slash, folder = value.partition("/")
        if slash and "@" in address and folder.strip("/"):
            return f"{address.strip()}/{folder.strip('/')}"
    raise PydanticCustomError("kept_folder", "expected ADDRESS/FOLDER such as vp@most.gov.vn/Lưu trữ, got {got}",
                              {"got": repr(value)})


class RetentionRule(_Frozen):
    """Messages in ``folder`` (a name such as ``Archive/2019``, a special use such as ``\\Junk``,
    or ``*``) whose INTERNALDATE is older than ``older_than`` (``30d``, ``6m``) are expunged."""

    folder: str = Field(min_length=1)
    older_than: Annotated[str, BeforeValidator(_period)]

    def period(self) -> tuple[int | None, int | None]:
        """(days, months): one of them is set."""
        m = _PERIOD_RE.match(self.older_than)
        assert m is not None
        n = int(m.group(1))
        return (n, None) if m.group(2).startswith("d") else (None, n)


class Retention(_Frozen):
    """R-QUOTA-2: expiry of old mail, run daily inside the server and by `mailserver retention run`."""

    rules: tuple[RetentionRule, ...] = (
        RetentionRule(folder="\\Junk", older_than="30d"),
        RetentionRule(folder="\\Trash", older_than="30d"),
    )
    run_at: Annotated[str | None, BeforeValidator(_run_at)] = "02:30"  # server local time; null = never
    # Folders no rule touches, as "address/folder": a unit mailbox's archive the operator keeps
    # (R-BOX-2: mail received there is an official document), e.g. "vp@most.gov.vn/Lưu trữ".
    keep: tuple[Annotated[str, BeforeValidator(_kept_folder)], ...] = ()
    # Owners are told this many days ahead which mail a rule on their own folders will delete
    # (Junk and Trash rules excepted); null = no notice.
    notice_days: int | None = Field(default=7, ge=1, le=60)

    def kept(self) -> tuple[tuple[str, str], ...]:
        """``keep`` as (address, folder name) pairs."""
        return tuple((a, f) for a, _, f in (k.partition("/") for k in self.keep))


class Lifecycle(_Frozen):
    """Account lifecycle deadlines (R-LIFE-*); null turns a rule off. Inactivity counts from the
    last login, or from creation when the account never logged in."""

    revoke_after_notice_days: int | None = Field(default=None, ge=0)  # R-LIFE-2 molisa: 2
    lock_after_inactive_months: int | None = Field(default=None, ge=1)  # R-LIFE-4 most 6, R-LIFE-5 hcm-q4 3
    revoke_after_inactive_months: int | None = Field(default=None, ge=1)  # R-LIFE-3 lamdong 3, R-LIFE-4 most 12
    delete_after_inactive_months: int | None = Field(default=None, ge=1)  # R-LIFE-5 hcm-q4 6
    leaver_revoke_months: int | None = Field(default=None, ge=0)  # R-LIFE-4 most: within 6 months of notice
    leaver_revoke_max_months: int | None = Field(default=None, ge=0)  # R-LIFE-4 most: at most 12
    notify_unit: bool = False  # R-LIFE-3 lamdong: tell the unit by mail of every change
    # The server applies these rules daily at this local time (`mailserver lifecycle run` does it
    # on demand); null = only on demand. Off by default: users cannot change their own password
    # through this server yet, so the initial-password deadlines (R-PASS-1/3) would lock accounts
    # whose users had no way to comply; the operator turns it on knowingly.
    run_at: Annotated[str | None, BeforeValidator(_run_at)] = None


class Search(_Frozen):
    fold_diacritics: bool = True


class Web(_Frozen):
    """The self-service portal on ``listeners.web`` (mailserver/web/)."""

    # HTTPS with tls.cert/key. Off only behind a TLS-terminating proxy, and then the listener must
    # be on a loopback address (passwords never cross the network in clear).
    tls: bool = True
    publish_directory: bool = False  # R-DIR-1: /danh-ba serves the directory of every active address
    directory_title: str = "Danh bạ thư điện tử"
    # How users reach the portal when it is behind a proxy (https://mail.example.gov.vn); default:
    # https://<hostname>:<listeners.web port>. Shown in IMAP alerts to change an initial password.
    public_url: str | None = None
    # Who may read /metrics (account and queue figures): these networks only.
    metrics_from: tuple[IPvAnyNetwork, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    # Operator pages (/reports): only from these networks, and only to the accounts in `operators`
    # (HTTP Basic over the portal's TLS, checked like any login); 404 to anyone else.
    admin_from: tuple[IPvAnyNetwork, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    operators: tuple[str, ...] = ()


class QueueDomain(_Frozen):
    """Per destination domain options of the outbound queue (``queue.domains``)."""

    require_tls: bool = False  # no STARTTLS offered (or it fails) → temporary failure, not plain text
    connections: int | None = Field(default=None, ge=1)  # at once to this domain; null = queue.per_domain


class Queue(_Frozen):
    """Outbound queue (smtp/outbound). Durations are seconds."""

    retry_first: int = Field(default=300, ge=1)  # first retry after a temporary failure (5 min)
    retry_max: int = Field(default=4 * 3600, ge=1)  # back-off doubles up to this (4 h)
    give_up_after: int = Field(default=5 * 24 * 3600, ge=1)  # then a failure DSN (5 days)
    delay_warning_after: int | None = Field(default=4 * 3600, ge=1)  # one "delayed" DSN; null = never
    concurrency: int = Field(default=20, ge=1)  # outgoing connections at once, all domains
    per_domain: int = Field(default=10, ge=1)  # outgoing connections at once to one domain
    poll: int = Field(default=30, ge=1)  # look for due items at least this often
    lease: int = Field(default=1800, ge=60)  # a claimed item is retried elsewhere after this (crash)
    verify_certificates: bool = False  # MX-to-MX TLS is opportunistic; true = refuse bad certificates
    # CA certificates (PEM) trusted for verified outbound TLS besides the system's (REQUIRETLS, RFC 8689)
    ca_file: Path | None = None
    dane: bool = True  # RFC 7672: obey DNSSEC-validated TLSA records of MX hosts (AD bit of dns.nameservers)
    # RFC 5321 4.5.3.2 timeouts: greeting 5 min, MAIL/RCPT 5 min, DATA 2 min, end of data 10 min.
    connect_timeout: int = Field(default=300, ge=1)
    command_timeout: int = Field(default=300, ge=1)
    data_timeout: int = Field(default=600, ge=1)
    domains: dict[str, QueueDomain] = {}


#: A DKIM selector: DNS labels (RFC 6376 3.1); it also names the key file, so no "/" or "..".
SELECTOR_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$"
Selector = Annotated[str, Field(pattern=SELECTOR_PATTERN)]


class Dkim(_Frozen):
    """DKIM signing of outgoing mail (R-SEC-2). Keys: ``<data_dir>/dkim/<domain>.<selector>.key``.
    RSA with ``selector``; in addition Ed25519 (RFC 8463) with ``ed25519_selector`` once that key
    exists (``mailserver dkim keygen DOMAIN --type ed25519``); null turns Ed25519 off."""

    sign: bool = True
    selector: Selector = "mail"
    selectors: dict[str, Selector] = {}  # domain → selector, for key rotation
    ed25519_selector: Selector | None = "ed25519"
    ed25519_selectors: dict[str, Selector] = {}  # domain → Ed25519 selector, for key rotation

    @model_validator(mode="after")
    def _two_keys_two_selectors(self) -> Dkim:
        for domain in {"", *self.selectors, *self.ed25519_selectors}:
            rsa = self.selectors.get(domain, self.selector)
            ed = self.ed25519_selectors.get(domain, self.ed25519_selector)
            if rsa == ed:
                where = f" for {domain}" if domain else ""
                raise ValueError(f"dkim: the RSA and the Ed25519 key need different selectors{where} (both {rsa!r})")
        return self


class Dns(_Frozen):
    """DNS for outbound routing, SPF and DKIM. ``static`` answers win over the network; with
    ``static_only`` the network is never asked (air-gapped agencies, tests). Per name:
    ``{mx: ["10 mx.other.gov.vn"], a: ["10.1.2.3"], txt: ["v=spf1 ip4:10.1.2.0/24 -all"]}``."""

    static: dict[str, dict[str, list[str]]] = {}
    static_only: bool = False
    nameservers: tuple[str, ...] = ()  # default: /etc/resolv.conf
    timeout: float = Field(default=5.0, gt=0)


class Guard(_Frozen):
    """Login guessing defence (R-SEC-1, mailserver/policy/guard.py), shared by IMAP, POP3,
    submission and the portal; and the connection and rate limits that go with it."""

    # seconds of delay after a client address's first failed login, doubling per failure up to
    # delay_max; the same for failed logins to one account from any address
    delay_first: float = Field(default=2.0, ge=0)
    delay_max: float = Field(default=15.0, ge=0)
    # failed logins after which an address is refused without a password check, for block_seconds
    block_after: int = Field(default=10, ge=1)
    block_seconds: float = Field(default=900, ge=0)
    # a tally is forgotten this long after its last failure
    forget_after: float = Field(default=3600, gt=0)
    # most tallies kept (addresses and account names); the oldest go first
    max_entries: int = Field(default=1_000_000, ge=100)
    # lock an account (state locked, `account unlock` to undo) once this many logins to it failed
    # from any addresses within forget_after: stops a slow distributed guess, but lets anyone lock
    # anyone out, so off unless the profile or the operator asks for it; null = never
    lock_after: int | None = Field(default=None, ge=1)
    # clients never delayed, blocked or limited (monitoring, webmail); loopback is not trusted by default
    trusted: tuple[IPvAnyNetwork, ...] = ()
    # connections at once from one client address (IPv6: its /64) to one service; null = no limit
    connections_per_address: int | None = Field(default=300, ge=1)  # an office behind one NAT address shares it
    # IMAP sessions logged in at once as one account (in this process); null = no limit
    imap_sessions_per_account: int | None = Field(default=50, ge=1)
    # SMTP commands in one session, and unknown or malformed ones, before 421; null = no limit
    smtp_commands_per_session: int | None = Field(default=10_000, ge=1)
    smtp_bad_commands_per_session: int | None = Field(default=20, ge=1)
    # messages and recipients one authenticated account may submit per clock hour; then 451 4.7.1
    # and one notice (Vietnamese, English) to the account's unit head and the postmaster; null = no limit
    submission_messages_per_hour: int | None = Field(default=500, ge=1)
    submission_recipients_per_hour: int | None = Field(default=2000, ge=1)


class Proxy(_Frozen):
    """HAProxy's PROXY protocol (v1 and v2): connections from these networks begin with a PROXY
    header that gives the real client address (for the login guard, limits and logs). Others are
    served as direct clients. Empty: no proxy."""

    trusted: tuple[IPvAnyNetwork, ...] = ()
    timeout: float = Field(default=10.0, gt=0)  # seconds for the header to arrive


def _domain_name(value: object) -> object:
    """config/names.py: a DNS name (IDNA accepted, kept as its ASCII form)."""
    if not isinstance(value, str):
        return value
    try:
        return check_domain(value)
    except ValueError as exc:
        raise PydanticCustomError("domain", "{reason}", {"reason": str(exc)}) from None


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class Settings(_Frozen):
    profile: Literal["molisa", "lamdong", "most", "moj", "hcm-q4", "none"] = "none"
    # How `account add` derives a personal address from a name when --address is not given
    # (mailserver.policy.addresses): R-ADDR-1 molisa, R-ADDR-2 lamdong, R-ADDR-3 hcm-q4; most, moj
    # and none fix only the form xxx@domain and use the molisa form.
    address_rule: Literal["molisa", "lamdong", "most", "moj", "hcm-q4", "none"] = "none"
    hostname: Annotated[str, BeforeValidator(_domain_name)] = "localhost"
    domains: tuple[Annotated[str, BeforeValidator(_domain_name)], ...] = ("example.gov.vn",)
    data_dir: Path = Path("data")
    database: Database = Database()
    listeners: Listeners = Listeners()
    tls: TLS = TLS()
    routes: dict[str, str] = {}
    limits: Limits = Limits()
    passwords: Passwords = Passwords()
    quota: Quota = Quota()
    retention: Retention = Retention()
    lifecycle: Lifecycle = Lifecycle()
    search: Search = Search()
    queue: Queue = Queue()
    mta_sts: MtaSts = MtaSts()  # config/mtasts.py (RFC 8461)
    dkim: Dkim = Dkim()
    dns: Dns = Dns()
    web: Web = Web()
    maintenance: Maintenance = Maintenance()  # R-OPS-3 announced windows: IMAP [ALERT] (config/maintenance.py)
    reports: Reports = Reports()  # R-OPS-1/2 check rules, counters kept (config/reports.py)
    agency: Agency = Agency()  # name, logo, helpdesk on the portal and in reports (config/agency.py)
    _logo_exists = model_validator(mode="after")(check_logo)
    filters: Filters = Filters()  # spamd, clamd, milters, DMARC (config/filters.py)
    accounts: AccountChanges = AccountChanges()  # account rename aliases (config/accounts.py)
    role_addresses: RoleAddresses = RoleAddresses()  # postmaster@, abuse@ (config/filters.py)
    guard: Guard = Guard()
    proxy: Proxy = Proxy()
    backup: Backup = Backup()  # scheduled, rotated, verified backups (config/backup.py, R-SEC-4)
    logging: Logging = Logging()  # level, text|json, stderr or a file (config/logs.py)
    ldap: Ldap = Ldap()  # directory-backed accounts and `ldap sync` (config/ldap.py, R-PROTO-3)
    classified: Classified = Classified()  # R-SEC-3 guard of submission (config/classified.py)
    sieve: Sieve = Sieve()  # users' filters and vacation replies (config/sieve.py)

    def password_url(self) -> str | None:
        """The portal's password page as users reach it; None without a portal."""
        if self.web.public_url:
            return self.web.public_url.rstrip("/") + "/password"
        web = self.listeners.web
        if web is None:
            return None
        scheme, default = ("https", 443) if self.web.tls else ("http", 80)
        # a portal listening on loopback only (the default install) is reached there, not by name
        host = self.hostname if not _is_loopback(web.address) else (f"[{web.address}]" if ":" in web.address else web.address)
        return f"{scheme}://{host}{'' if web.port == default else f':{web.port}'}/password"

    @model_validator(mode="after")
    def _web_plaintext_only_on_loopback(self) -> Settings:
        web = self.listeners.web
        if web is not None and not self.web.tls and not _is_loopback(web.address):
            raise ValueError(f"web.tls: false needs listeners.web on a loopback address, not {web.address!r} "
                             "(put a TLS-terminating proxy in front, or keep web.tls on)")
        return self
