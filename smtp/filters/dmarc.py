"""DMARC (RFC 7489): does the domain of the From header stand behind this message?

Pure parts (record parsing, organizational domain, alignment, the verdict) are separate from the
one DNS step (``lookup``) so each has table tests. The SPF and DKIM results are the ones
``smtp.authresults`` already computed for Authentication-Results; DMARC adds no look-up of its own
beyond ``_dmarc.<domain>`` TXT (RFC 7489 6.6.3).

The organizational domain comes from the Public Suffix List (publicsuffixlist ships a copy, no
network at run time): ``mail.bo.gov.vn`` and ``bo.gov.vn`` are aligned in relaxed mode, ``a.com.vn``
and ``b.com.vn`` are not.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from typing import Sequence

from publicsuffixlist import PublicSuffixList

from smtp.outbound.dns import DnsTempError, NXDomain, Resolver

_PSL = PublicSuffixList()

_FROM = re.compile(rb"(?im)^from[ \t]*:((?:[^\r\n]|\r?\n[ \t])*)")


@dataclass(frozen=True, slots=True)
class Record:
    p: str  # none | quarantine | reject
    sp: str  # policy for subdomains of the organizational domain
    adkim: str = "r"  # r | s
    aspf: str = "r"
    pct: int = 100


@dataclass(frozen=True, slots=True)
class Result:
    result: str  # pass | fail | none | temperror | permerror
    policy: str  # the policy to apply: none | quarantine | reject
    domain: str  # the From domain ("" when there is none)
    reason: str = ""


def parse_record(txt: str) -> Record | None:
    """A ``v=DMARC1`` TXT record, None when it is not one. An unknown or missing ``p`` with a
    valid ``rua`` is treated as ``p=none`` (RFC 7489 6.6.3 step 6); other bad tags are ignored."""
    tags: dict[str, str] = {}
    for part in txt.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags.setdefault(key.strip().lower(), value.strip())
    if tags.get("v") != "DMARC1":
        return None
    p = tags.get("p", "").lower()
    if p not in ("none", "quarantine", "reject"):
        if "rua" not in tags:
            return None
        p = "none"
    sp = tags.get("sp", "").lower()
    sp = sp if sp in ("none", "quarantine", "reject") else p
    adkim = "s" if tags.get("adkim", "r").lower() == "s" else "r"
    aspf = "s" if tags.get("aspf", "r").lower() == "s" else "r"
    try:
        pct = min(100, max(0, int(tags.get("pct", "100"))))
    except ValueError:
        pct = 100
    return Record(p, sp, adkim, aspf, pct)


def org_domain(domain: str) -> str:
    """The organizational domain (RFC 7489 3.2): the public suffix plus one label."""
    domain = domain.lower().rstrip(".")
    return _PSL.privatesuffix(domain) or domain


def aligned(a: str, b: str, mode: str) -> bool:
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    return a == b if mode == "s" else org_domain(a) == org_domain(b)


def from_domain(head: bytes) -> str | None:
    """The domain of the single author of the header section; None when there is no From, more
    than one From field or more than one address (RFC 7489 6.6.1: such mail cannot pass)."""
    fields = _FROM.findall(head)
    if len(fields) != 1:
        return None
    value = fields[0].decode("utf-8", "replace").replace("\r\n", " ").replace("\n", " ")
    addresses = [a for _, a in email.utils.getaddresses([value]) if a]
    if len(addresses) != 1 or "@" not in addresses[0]:
        return None
    domain = addresses[0].rsplit("@", 1)[1].strip().strip(">").lower().rstrip(".")
    return domain or None


def evaluate(
    domain: str,
    record: Record,
    *,
    spf: str,
    spf_domain: str,
    dkim_pass_domains: Sequence[str],
    sample: float = 0.0,
) -> Result:
    """RFC 7489 section 6.6.2/6.6.4: pass when an SPF pass or a DKIM pass is aligned with the
    From domain. ``sample`` in [0, 1) decides ``pct`` (a failing message outside the sample gets
    the next lower policy, RFC 7489 6.6.4). ``spf_domain`` is the MAIL FROM domain (or HELO)."""
    if spf == "pass" and spf_domain and aligned(spf_domain, domain, record.aspf):
        return Result("pass", "none", domain, "spf aligned")
    for d in dkim_pass_domains:
        if aligned(d, domain, record.adkim):
            return Result("pass", "none", domain, "dkim aligned")
    policy = record.p if org_domain(domain) == domain else record.sp
    if policy != "none" and sample * 100 >= record.pct:
        policy = "quarantine" if policy == "reject" else "none"
    return Result("fail", policy, domain, "no aligned pass")


async def lookup(domain: str, resolver: Resolver) -> Record | None:
    """The DMARC record of ``domain``, else of its organizational domain; None when neither has
    one. ``DnsTempError`` passes through (the result is then ``temperror``)."""
    for name in dict.fromkeys((domain, org_domain(domain))):
        try:
            answers = await resolver.txt(f"_dmarc.{name}")
        except NXDomain:
            answers = []
        records = [r for r in (parse_record(a if isinstance(a, str) else a.decode("utf-8", "replace")) for a in answers) if r]
        if len(records) == 1:
            return records[0]
        # several records: none applies (RFC 7489 6.6.3 step 2)
    return None


async def check(head: bytes, resolver: Resolver, *, spf: str, spf_domain: str,
                dkim_pass_domains: Sequence[str], sample: float) -> Result:  # fmt: skip
    domain = from_domain(head)
    if domain is None:
        return Result("permerror", "none", "", "no single From address")
    try:
        record = await lookup(domain, resolver)
    except DnsTempError:
        return Result("temperror", "none", domain, "DNS")
    if record is None:
        return Result("none", "none", domain)
    return evaluate(domain, record, spf=spf, spf_domain=spf_domain, dkim_pass_domains=dkim_pass_domains, sample=sample)
