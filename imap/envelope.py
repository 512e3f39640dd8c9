"""RFC 3501 ENVELOPE from the envelope dict cached at delivery (docs/CONTRACTS.md schema).

Replaces Twisted's getEnvelope, which builds invalid 3-element addresses for missing From,
groups and addresses without "@", and drops the connection on 8-bit headers.
"""

from __future__ import annotations

from imap.wire import astring, plist

_ADDRESS_FIELDS = ("from", "sender", "reply_to", "to", "cc", "bcc")


def render_address_list(addrs: list | None) -> bytes:
    if not addrs:
        return b"NIL"
    # address-list is "(" 1*address ")": no separator between the addresses (RFC 3501 §9).
    return b"(" + b"".join(
        b"(%s %s %s %s)" % (astring(a.get("name")), astring(a.get("adl")), astring(a.get("mailbox")), astring(a.get("host")))
        for a in addrs
    ) + b")"


def render_envelope(env: dict | None) -> bytes:
    """The parenthesised ENVELOPE; a missing dict renders as an envelope of NILs."""
    env = env or {}
    sender = env.get("sender") or env.get("from")
    reply_to = env.get("reply_to") or env.get("from")
    fields = [
        astring(env.get("date")),
        astring(env.get("subject")),
        render_address_list(env.get("from")),
        render_address_list(sender),
        render_address_list(reply_to),
        render_address_list(env.get("to")),
        render_address_list(env.get("cc")),
        render_address_list(env.get("bcc")),
        astring(env.get("in_reply_to")),
        astring(env.get("message_id")),
    ]
    return plist(fields)
