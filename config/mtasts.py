"""MTA-STS settings (RFC 8461): obeying other domains' policies on outbound mail, and our own
policy, served by the portal at ``https://mta-sts.<domain>/.well-known/mta-sts.txt``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class MtaSts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    outbound: bool = True  # fetch and obey the policy of a destination that publishes one
    tls_reports: bool = True  # TLS-RPT (RFC 8460): daily reports of our outbound TLS sessions to _smtp._tls rua
    policy_port: int = Field(default=443, ge=1, le=65535)  # HTTPS port of mta-sts.<domain> (tests change it)
    fetch_timeout: float = Field(default=10.0, gt=0)  # RFC 8461 3.3: policies are fetched with a timeout
    # Our own policy (what the portal serves): none | testing | enforce, the MX host patterns
    # (default: our hostname) and how long senders may cache it (RFC 8461 3.2).
    mode: Literal["none", "testing", "enforce"] = "none"
    mx: tuple[str, ...] = ()
    max_age: int = Field(default=604800, ge=1, le=31557600)
