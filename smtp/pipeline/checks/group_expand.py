"""A group address (R-BOX-4) is delivered to its members, not to the group's own mailbox: one
stored body, one message row per member (a group fans out to many targets in one commit;
docs/architecture.md, "Storage"). The group's send policy is applied to the envelope sender
(550 5.7.1); a group with nobody who can receive is refused at RCPT (550 5.2.1) rather than
accepted into a void. Without ``ctx.groups`` (not wired by the composition root) the group's own
mailbox receives, like any other."""

from smtp import replies
from smtp.pipeline import PASS, RcptContext, Verdict, refuse
from storage.api import AccountKind


async def check(ctx: RcptContext) -> Verdict:
    account = ctx.account
    if account is None or account.kind != AccountKind.GROUP or ctx.groups is None:
        return PASS
    if not await ctx.call(ctx.groups.may_send_to_group, account.id, ctx.sender):
        return refuse(replies.S550_GROUP_SENDER, f"<{ctx.sender}> may not post to {account.address}")
    members = await ctx.call(ctx.groups.expand_accounts, account.id)
    if not members:
        return refuse(replies.S550_GROUP_EMPTY, f"{account.address} has no member who can receive")
    ctx.deliver_to = members
    return PASS
