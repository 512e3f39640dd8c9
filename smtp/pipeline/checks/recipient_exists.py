"""A local recipient must be an account (any of its addresses) → else 550 5.1.1. Remote
recipients of authenticated clients pass untouched (they go to the outbound queue)."""

from smtp import replies
from smtp.pipeline import PASS, RcptContext, Verdict, refuse


async def check(ctx: RcptContext) -> Verdict:
    if not ctx.local:
        return PASS
    # A recipient looked up lately is known without a thread hand-off (storage/recipients.py).
    ctx.account = ctx.store.accounts.peek_account(ctx.address) or await ctx.call(ctx.store.accounts.get_account, ctx.address)
    if ctx.account is None:
        return refuse(replies.S550_NO_SUCH_USER, f"no account {ctx.address}")
    ctx.deliver_to = [ctx.account]
    return PASS
