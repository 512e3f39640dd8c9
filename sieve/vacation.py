"""RFC 5230 vacation: when a reply may be sent, and the reply itself.

``may_reply`` is the rule of section 4.5 and 5: never to the null sender or a mailer daemon, a
list, bulk or junk mail, an automatic message (``Auto-Submitted`` other than ``no``, our own
notices included: they all carry ``Auto-Submitted``), nor to mail that did not name the user
(in To, Cc, Bcc or Resent-*) or that the user sent. Once per sender and handle per period is
the store's part (``store.sieve.vacation_due``).
"""

from __future__ import annotations

import hashlib
import datetime as _dt
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from sieve.interpret import Vacation
from sieve.message import MessageView

#: Local parts that are programs, not people (RFC 5230 4.5 "owner-*", "*-request", daemons).
_ROBOTS = ("mailer-daemon", "postmaster", "listserv", "majordomo", "noreply", "no-reply", "bounce")


def may_reply(message: MessageView, sender: str, own: set[str]) -> tuple[bool, str]:
    """(True, "") or (False, why). ``own``: the user's addresses (lower case), :addresses included."""
    local = sender.rpartition("@")[0].lower()
    if not sender:
        return False, "null sender"
    if sender.lower() in own:
        return False, "sent by the user"
    if local.startswith("owner-") or local.endswith("-request") or any(local == r or local.startswith(r + "+") for r in _ROBOTS):
        return False, "automated sender"
    auto = [v.strip().lower() for v in message.raw_header("auto-submitted")]
    if any(v and not v.startswith("no") for v in auto):
        return False, "Auto-Submitted"
    if any(v.strip().lower() in ("bulk", "list", "junk") for v in message.raw_header("precedence")):
        return False, "Precedence"
    if any(message.raw_header(h) for h in ("list-id", "list-unsubscribe", "list-post", "list-help")):
        return False, "mailing list"
    if any(v.strip().lower() in ("all", "oof", "autoreply") for v in message.raw_header("x-auto-response-suppress")):
        return False, "X-Auto-Response-Suppress"
    named = {a.lower() for h in ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc") for a in message.addresses(h)}
    if not named & own:
        return False, "user not named in To/Cc"
    return True, ""


def handle(action: Vacation) -> str:
    """RFC 5230 4.2: replies with the same reason (and subject, from) share a handle."""
    if action.handle:
        return action.handle[:64]
    key = "\0".join([action.reason, action.subject or "", action.from_ or ""]).encode()
    return "auto-" + hashlib.sha256(key).hexdigest()[:32]


def build_reply(action: Vacation, message: MessageView, *, sender: str, user: str, hostname: str,
                now: _dt.datetime) -> bytes:  # fmt: skip
    """The reply (RFC 5230 5.x): to the envelope sender, from the user, ``Auto-Submitted:
    auto-replied``, In-Reply-To/References of the message, subject "Auto: <subject>" unless given."""
    original = (message.header("subject") or [""])[0]
    reply = EmailMessage(policy=SMTP)
    reply["From"] = action.from_ or user
    reply["To"] = sender
    reply["Subject"] = action.subject if action.subject is not None else f"Auto: {original}".strip()
    reply["Date"] = format_datetime(now)
    reply["Message-ID"] = make_msgid(domain=hostname)
    msgid = (message.raw_header("message-id") or [""])[0]
    if msgid:
        reply["In-Reply-To"] = msgid
        refs = (message.raw_header("references") or [""])[0]
        reply["References"] = f"{refs} {msgid}".strip()
    reply["Auto-Submitted"] = "auto-replied (vacation)"
    reply["Precedence"] = "bulk"
    reply.set_content(action.reason, charset="utf-8")
    return bytes(reply)
