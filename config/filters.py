"""Settings of the content filters of the MX (R-SEC-1) and of the role addresses (RFC 5321 4.5.1).

``filters``: SpamAssassin ``spamd``, ClamAV ``clamd``, milters (rspamd, OpenDKIM, OpenDMARC...)
and DMARC. Each daemon is off until configured. Submission (our own users) is scanned by clamd
whenever it is configured, and by spamd when ``spamd.submission`` is true; milters and DMARC
are for inbound mail only. ``on_failure`` decides what a filter that does not
answer in time (or at all) means for the message: ``accept`` delivers it with an
``X-Filter-Unscanned`` header (fail-open), ``tempfail`` refuses it with ``451 4.7.1`` so the sender
retries (fail-closed). Neither loses a message.

``role_addresses``: where ``postmaster@`` and ``abuse@`` of every local domain are delivered.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from config.sizes import parse_size

OnFailure = Literal["accept", "tempfail"]
#: A byte count, or ``512KiB``/``25MB`` as in config/sizes.py.
Size = Annotated[int, BeforeValidator(lambda v: parse_size(v) if isinstance(v, str) else v), Field(ge=1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Spamd(_Frozen):
    """SpamAssassin ``spamd`` over TCP. Scores at or above ``junk_score`` go to the Junk folder,
    at or above ``reject_score`` are refused at end of DATA (550 5.7.1); null turns that step off."""

    host: str = "127.0.0.1"
    port: int = Field(default=783, ge=1, le=65535)
    socket: str | None = None  # a Unix socket path (spamd --socketpath) instead of host:port: cheaper
    timeout: float = Field(default=30.0, gt=0)  # seconds for the whole exchange
    junk_score: float | None = 5.0
    reject_score: float | None = 15.0
    max_size: Size = 512 * 1024  # larger messages are not scanned (spamc's default)
    on_failure: OnFailure = "accept"
    # also scan what our own users submit (587/465): refused at reject_score (a stolen password
    # sending spam), never filed nor marked
    submission: bool = False

    @model_validator(mode="after")
    def _order(self) -> Spamd:
        if self.junk_score is not None and self.reject_score is not None and self.reject_score < self.junk_score:
            raise ValueError("filters.spamd.reject_score must not be below junk_score")
        return self


class Clamd(_Frozen):
    """ClamAV ``clamd`` over TCP (INSTREAM). An infected message is refused (554 5.7.1), on the
    MX and on submission alike."""

    host: str = "127.0.0.1"
    port: int = Field(default=3310, ge=1, le=65535)
    socket: str | None = None  # a Unix socket path (clamd LocalSocket) instead of host:port: cheaper
    timeout: float = Field(default=60.0, gt=0)
    max_size: Size = 25 * 1024 * 1024  # clamd's StreamMaxLength; larger: not scanned
    on_failure: OnFailure = "tempfail"


class Milter(_Frozen):
    """A milter (Sendmail milter protocol version 6, as Postfix speaks it) on TCP."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    timeout: float = Field(default=30.0, gt=0)
    on_failure: OnFailure = "tempfail"


class Dmarc(_Frozen):
    """DMARC (RFC 7489) of inbound mail, from the SPF and DKIM results. A failing message whose
    domain publishes ``p=reject`` is refused when ``reject`` is true (else filed into Junk);
    ``p=quarantine`` goes to Junk when ``quarantine`` is true."""

    enabled: bool = True
    reject: bool = True
    quarantine: bool = True


class Filters(_Frozen):
    spamd: Spamd | None = None
    clamd: Clamd | None = None
    milters: tuple[Milter, ...] = ()
    dmarc: Dmarc = Dmarc()
    junk_folder: str = "Junk"  # where spam goes; INBOX when the account has no such folder


class RoleAddresses(_Frozen):
    """Accounts that receive ``postmaster@<domain>`` and ``abuse@<domain>`` for every local domain
    (RFC 5321 4.5.1, RFC 2142). Null: only an account of that very address receives it."""

    postmaster: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    abuse: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")

    def target(self, local_part: str) -> str | None:
        """The configured account address for a role's local part, else None."""
        local = local_part.lower()
        if local == "postmaster":
            return self.postmaster.lower() if self.postmaster else None
        if local == "abuse":
            return self.abuse.lower() if self.abuse else None
        return None
