"""Submission: every address in the From: header must be one the user may send as, by the same
rule as the envelope sender (sender_authorised), else 553 5.7.1 (R-ACC-1). A message
without From: passes (nothing is claimed); an unparseable one is refused. Units sent as through
From: are added to ``ctx.extra["send_as"]`` for the audit log."""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from smtp import replies
from smtp.outbound.hygiene import read_header
from smtp.pipeline import PASS, DataContext, Verdict, refuse


def from_addresses(spool) -> list[str] | None:
    """Addresses of the From: fields (None when a From: field has no address in it)."""
    head, _ = read_header(spool)
    message = BytesHeaderParser(policy=compat32).parsebytes(head)
    values = message.get_all("From") or []
    found = []
    for value in values:
        pairs = [addr for _name, addr in getaddresses([str(value)]) if addr]
        if not pairs or any("@" not in a for a in pairs):
            return None
        found += pairs
    return found


async def check(ctx: DataContext) -> Verdict:
    if not ctx.peer.authenticated or ctx.spool is None:
        return PASS
    addresses = await ctx.call(from_addresses, ctx.spool)
    if addresses is None:
        return refuse(replies.S553_FROM_NOT_OWNED, "From: header without a usable address")
    actor = ctx.peer.actor_id if ctx.peer.actor_id is not None else ctx.peer.account_id
    for address in dict.fromkeys(a.lower() for a in addresses):
        account = await ctx.call(ctx.store.accounts.get_account, address)
        if account is None:
            allowed = False
        elif account.id == actor or (ctx.org is None and account.id == ctx.peer.account_id):
            continue
        else:
            allowed = ctx.org is not None and await ctx.call(ctx.org.may_send_as, actor, address)
        if not allowed:
            return refuse(replies.S553_FROM_NOT_OWNED, f"From: <{address}> not allowed for account {actor}")
        ctx.extra.setdefault("send_as", set()).add(account.id)
    return PASS
