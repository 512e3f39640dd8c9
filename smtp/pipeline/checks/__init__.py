"""Registry of inbound checks per stage, and the default order (cheap and local first)."""

from __future__ import annotations

from smtp.pipeline.checks import (
    attachment_quota,
    authentication_results,
    declared_size,
    from_header,
    group_expand,
    login_current,
    message_size,
    recipient_exists,
    recipient_limit,
    recipient_quota,
    recipient_state,
    relay,
    role_address,
    sender_authorised,
)
from smtp.classified import check as classified
from smtp.filters import checks as filters

REGISTRY = {
    "MAIL": {
        "declared_size": declared_size.check,
        "login_current": login_current.check,
        "sender_authorised": sender_authorised.check,
    },
    "RCPT": {
        "recipient_limit": recipient_limit.check,
        "relay": relay.check,
        "role_address": role_address.check,
        "recipient_exists": recipient_exists.check,
        "recipient_state": recipient_state.check,
        "group_expand": group_expand.check,
        "recipient_quota": recipient_quota.check,
    },
    "DATA": {
        "message_size": message_size.check,
        "from_header": from_header.check,
        "attachment_quota": attachment_quota.check,
        "authentication_results": authentication_results.check,
        "virus": filters.virus,
        "milter": filters.milter,
        "spam": filters.spam,
        "classified": classified.check,
    },
}

#: Inbound (MX) defaults; submission (smtp/submission.py) adds "login_current" and "sender_authorised" at MAIL and
#: "from_header" at DATA, and has no "authentication_results".
DEFAULTS = {
    "MAIL": ("declared_size",),
    "RCPT": ("recipient_limit", "relay", "role_address", "recipient_exists", "recipient_state", "group_expand", "recipient_quota"),
    # the content filters pass at once when their daemon is not configured (smtp/filters)
    "DATA": ("message_size", "attachment_quota", "authentication_results", "virus", "milter", "spam"),
}
