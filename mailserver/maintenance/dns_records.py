"""The DNS records a domain publishes for this server (``mailserver dns DOMAIN [--check]``), built
from the configuration: MX, SPF, DKIM (from the keys present), DMARC, MTA-STS (RFC 8461),
TLS-RPT (RFC 8460), SRV for mail clients (RFC 6186, RFC 8314 submissions) and the names
Thunderbird's autoconfig and Outlook's autodiscover look up. ``check`` compares them with what
a resolver answers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from config.settings import Settings



@dataclass(frozen=True, slots=True)
class Record:
    name: str  # absolute, with the trailing dot
    type: str
    value: str  # presentation form (TXT without quotes: one string, split when printed)
    comment: str = ""

    def zone_line(self) -> str:
        value = self.value
        if self.type == "TXT":
            value = " ".join(f'"{self.value[i:i + 255]}"' for i in range(0, len(self.value), 255))
            value = f"( {value} )" if len(self.value) > 255 else value
        line = f"{self.name:<40} 3600 IN {self.type:<5} {value}"
        return f"{line}  ; {self.comment}" if self.comment else line


def mta_sts_policy(settings: Settings) -> str:
    """The policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 3.2),
    from ``mta_sts``: CRLF lines, ``mx`` defaulting to our hostname (pure)."""
    sts = settings.mta_sts
    lines = ["version: STSv1", f"mode: {sts.mode}"]
    lines += [f"mx: {mx}" for mx in (sts.mx or (settings.hostname,))]
    lines.append(f"max_age: {sts.max_age}")
    return "\r\n".join(lines) + "\r\n"


def dkim_keys(data_dir: Path, domain: str) -> list[tuple[str, Path]]:
    """(selector, key file) of every key present for ``domain`` (``<domain>.<selector>.key``)."""
    folder = data_dir / "dkim"
    if not folder.is_dir():
        return []
    prefix = domain + "."
    return sorted((p.name[len(prefix):-len(".key")], p) for p in folder.glob(f"{domain}.*.key"))


def web_port(settings: Settings) -> int | None:
    if settings.web.public_url:
        parts = urlsplit(settings.web.public_url)
        return parts.port or (443 if parts.scheme == "https" else 80)
    return settings.listeners.web.port if settings.listeners.web is not None else None


def records(settings: Settings, domain: str, dkim: list[tuple[str, str]], *, dmarc_policy: str = "quarantine") -> list[Record]:
    """``dkim``: (selector, TXT value) of the keys present."""
    d, host = domain.rstrip(".") + ".", settings.hostname.rstrip(".") + "."
    out = [Record(d, "MX", f"10 {host}", "mail for the domain comes here"),
           Record(d, "TXT", "v=spf1 mx -all", "SPF: only the MX hosts send for the domain")]
    out += [Record(f"{sel}._domainkey.{d}", "TXT", value, "DKIM key present") for sel, value in dkim]
    out += [Record(f"_dmarc.{d}", "TXT", f"v=DMARC1; p={dmarc_policy}; rua=mailto:postmaster@{domain}; adkim=r; aspf=r"),
            Record(f"_mta-sts.{d}", "TXT", f"v=STSv1; id={hashlib.sha256(mta_sts_policy(settings).encode()).hexdigest()[:20]}",
                   "MTA-STS (policy on the portal)"),
            Record(f"mta-sts.{d}", "CNAME", host),
            Record(f"_smtp._tls.{d}", "TXT", f"v=TLSRPTv1; rua=mailto:postmaster@{domain}")]
    ls = settings.listeners
    for service, listener, priority in (("imaps", ls.imaps, 0), ("imap", ls.imap, 10), ("pop3s", ls.pop3s, 20),
                                        ("pop3", ls.pop3, 30), ("submissions", ls.submissions, 0),
                                        ("submission", ls.submission, 10)):
        if listener is None:  # RFC 6186 §3.1: "." says the service is not offered
            out.append(Record(f"_{service}._tcp.{d}", "SRV", "0 0 0 .", "not offered"))
        else:
            out.append(Record(f"_{service}._tcp.{d}", "SRV", f"{priority} 1 {listener.port} {host}"))
    out += [Record(f"autoconfig.{d}", "CNAME", host, "Thunderbird autoconfig (portal)"),
            Record(f"autodiscover.{d}", "CNAME", host, "Outlook autodiscover (portal)")]
    port = web_port(settings)
    if port is not None:
        out.append(Record(f"_autodiscover._tcp.{d}", "SRV", f"0 0 {port} {host}"))
    return out


def _normal(rtype: str, value: str) -> str:
    if rtype == "TXT":
        return value
    return " ".join(value.lower().split())


def check(wanted: list[Record], lookup) -> list[tuple[Record, str, str]]:
    """(record, "ok"|"missing"|"different", what was found). ``lookup(name, type)`` returns the
    answers in presentation form (TXT strings joined), [] when there are none."""
    out = []
    for record in wanted:
        found = lookup(record.name, record.type)
        values = {_normal(record.type, v) for v in found}
        if _normal(record.type, record.value) in values:
            out.append((record, "ok", ""))
        elif record.type == "TXT" and record.value.startswith(("v=spf1", "v=DMARC1", "v=STSv1", "v=TLSRPTv1")):
            tag = record.value.split(";")[0].split()[0]
            same_kind = [v for v in found if v.startswith(tag)]
            out.append((record, "different" if same_kind else "missing", " | ".join(same_kind)))
        else:
            out.append((record, "different" if found else "missing", " | ".join(found)))
    return out
