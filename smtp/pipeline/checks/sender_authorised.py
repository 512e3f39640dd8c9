"""Submission: the envelope sender must be an address of the authenticated account, else
553 5.7.1 (R-ACC-1: nobody sends as someone else). Delegated unit and group addresses come with
issue 7's delegation model; until then only the account's own addresses pass."""

from smtp import replies
from smtp.pipeline import PASS, MailContext, Verdict, refuse


async def check(ctx: MailContext) -> Verdict:
    if not ctx.peer.authenticated:
        return PASS  # the MX listener; submission refuses MAIL before AUTH (530 5.7.0)
    account = await ctx.call(ctx.store.get_account, ctx.sender) if ctx.sender else None
    if account is None or account.id != ctx.peer.account_id:
        return refuse(replies.S553_SENDER_NOT_OWNED, f"<{ctx.sender}> is not account {ctx.peer.account_id}")
    return PASS
