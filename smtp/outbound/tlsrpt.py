"""TLS-RPT (RFC 8460): outcomes of our outbound TLS sessions, counted per day, destination
domain, policy (MTA-STS, DANE, none) and MX host, and reported daily as JSON to the addresses a
domain publishes in ``_smtp._tls.<domain>`` ("v=TLSRPTv1; rua=mailto:…"). Only ``mailto:``
addresses are served (``https:`` ones are logged and skipped). Building is pure; sending goes
through the outbound queue with ``TLS-Required: No`` (RFC 8689 5: a report about TLS trouble
must not be held back by it).
"""

from __future__ import annotations

import datetime as _dt
import json
import ssl
import uuid
from email.utils import format_datetime
from typing import Sequence
from urllib.parse import unquote

from storage.api import TlsCount

SUCCESS = "success"


def classify(exc: BaseException) -> str | None:
    """The RFC 8460 4.3 result type of a TLS failure, or None when it is not about TLS."""
    text = str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        if "mismatch" in text:
            return "certificate-host-mismatch"
        if "expired" in text:
            return "certificate-expired"
        return "certificate-not-trusted"
    if isinstance(exc, ssl.SSLError):
        return "validation-failure"
    return None


def parse_rua(records: Sequence[bytes]) -> list[str]:
    """The mailto: addresses of the one ``v=TLSRPTv1`` record ([] for none, several or bad)."""
    found = [r for r in records if r.startswith(b"v=TLSRPTv1")]
    if len(found) != 1:
        return []
    fields = dict(p.strip().partition("=")[::2] for p in found[0].decode("ascii", "replace").split(";") if p.strip())
    addresses = []
    for uri in fields.get("rua", "").split(","):
        uri = uri.strip()
        if uri.lower().startswith("mailto:"):
            address = unquote(uri[7:]).split("?")[0]
            if "@" in address:
                addresses.append(address)
    return addresses


def build_report(domain: str, day: str, counts: Sequence[TlsCount], *, organisation: str, contact: str,
                 report_id: str) -> dict:  # fmt: skip
    """The RFC 8460 4.4 JSON report of one policy domain and day."""
    policies: dict[str, dict] = {}
    for c in counts:
        entry = policies.setdefault(c.policy_type, {
            "policy": {"policy-type": c.policy_type, "policy-domain": domain, "mx-host": []},
            "summary": {"total-successful-session-count": 0, "total-failure-session-count": 0},
            "failure-details": [],
        })  # fmt: skip
        if c.mx_host and c.mx_host not in entry["policy"]["mx-host"]:
            entry["policy"]["mx-host"].append(c.mx_host)
        if c.result == SUCCESS:
            entry["summary"]["total-successful-session-count"] += c.count
        else:
            entry["summary"]["total-failure-session-count"] += c.count
            entry["failure-details"].append({"result-type": c.result, "receiving-mx-hostname": c.mx_host,
                                             "failed-session-count": c.count})  # fmt: skip
    for entry in policies.values():
        if not entry["failure-details"]:
            del entry["failure-details"]
    return {
        "organization-name": organisation,
        "date-range": {"start-datetime": f"{day}T00:00:00Z", "end-datetime": f"{day}T23:59:59Z"},
        "contact-info": contact,
        "report-id": report_id,
        "policies": list(policies.values()),
    }


def build_message(report: dict, *, domain: str, submitter: str, sender: str, recipients: Sequence[str],
                  now: _dt.datetime) -> bytes:  # fmt: skip
    """RFC 8460 5.3: multipart/report; report-type="tlsrpt" with the JSON as application/tlsrpt+json."""
    boundary = f"=_tlsrpt_{uuid.uuid4().hex}"
    start = report["date-range"]["start-datetime"]
    end = report["date-range"]["end-datetime"]
    name = f"{submitter}!{domain}!{start}!{end}!{report['report-id']}.json".replace(":", "")
    body = json.dumps(report, indent=1).encode()
    head = "\r\n".join([
        f"From: <{sender}>",
        f"To: {', '.join(f'<{r}>' for r in recipients)}",
        f"Subject: Report Domain: {domain} Submitter: {submitter} Report-ID: <{report['report-id']}>",
        f"Date: {format_datetime(now)}",
        f"Message-ID: <{uuid.uuid4().hex}@{submitter}>",
        f"TLS-Report-Domain: {domain}",
        f"TLS-Report-Submitter: {submitter}",
        "TLS-Required: No",
        "Auto-Submitted: auto-generated",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type="tlsrpt"; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        f"Báo cáo TLS (RFC 8460) của {submitter} về thư gửi tới {domain}, ngày {start[:10]}.",
        f"TLS report (RFC 8460) from {submitter} on mail sent to {domain}, {start[:10]}.",
        "",
        f"--{boundary}",
        f'Content-Type: application/tlsrpt+json; name="{name}"',
        f'Content-Disposition: attachment; filename="{name}"',
        "Content-Transfer-Encoding: 7bit",
        "",
    ]).encode("utf-8")  # fmt: skip
    return head + b"\r\n" + body + f"\r\n\r\n--{boundary}--\r\n".encode()


class Recorder:
    """Session outcomes in memory until the worker flushes them to the store."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str, str, str], int] = {}

    def note(self, day: str, domain: str, policy_type: str, mx_host: str, result: str) -> None:
        key = (day, domain, policy_type, mx_host, result)
        self._counts[key] = self._counts.get(key, 0) + 1

    def drain(self) -> list[TlsCount]:
        counts, self._counts = self._counts, {}
        return [TlsCount(*key, n) for key, n in counts.items()]
