"""Registry of inbound checks per stage, and the default order (cheap and local first)."""

from __future__ import annotations

from smtp.pipeline.checks import (
    declared_size,
    group_expand,
    message_size,
    recipient_exists,
    recipient_limit,
    recipient_state,
    relay,
    sender_authorised,
)

REGISTRY = {
    "MAIL": {"declared_size": declared_size.check, "sender_authorised": sender_authorised.check},
    "RCPT": {
        "recipient_limit": recipient_limit.check,
        "relay": relay.check,
        "recipient_exists": recipient_exists.check,
        "recipient_state": recipient_state.check,
        "group_expand": group_expand.check,
    },
    "DATA": {"message_size": message_size.check},
}

#: Inbound (MX) defaults; submission adds "sender_authorised" at MAIL (smtp/submission.py).
DEFAULTS = {
    "MAIL": ("declared_size",),
    "RCPT": ("recipient_limit", "relay", "recipient_exists", "recipient_state", "group_expand"),
    "DATA": ("message_size",),
}
