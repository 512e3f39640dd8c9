"""R-QUOTA-1 at RCPT: a mailbox that is full, or cannot take the declared SIZE, → 452 4.2.2 for
this recipient only (the others of the transaction are still accepted); 552 5.2.2 when the message
is larger than the whole mailbox. Without a declared size a message needs at least one byte, so a
mailbox exactly at its limit is full. The usage is as last committed (``get_account`` just read
it); the commit checks again, so a race past this point is caught there (DSN, smtp/bounce.py).
Group addresses are not checked here: each member is charged at the commit."""

from smtp import quota as q
from smtp.pipeline import PASS, RcptContext, Verdict, refuse
from storage.api import AccountKind


async def check(ctx: RcptContext) -> Verdict:
    account = ctx.account
    if ctx.quota is None or account is None or account.kind == AccountKind.GROUP and ctx.groups is not None:
        return PASS
    size = max(ctx.declared_size or 0, 1)
    decision = ctx.quota.check_delivery_now(account, size)
    if decision is None:  # per-class limits: read from the store, off the loop
        decision = await ctx.call(ctx.quota.check_delivery, account, size)
    if decision.ok:
        return PASS
    reason = f"{account.address} {decision.reason}: used {decision.used} of {decision.limit}, needs {decision.requested}"
    return refuse(q.rcpt_refused(decision, ctx.address, utf8=ctx.utf8), reason)
