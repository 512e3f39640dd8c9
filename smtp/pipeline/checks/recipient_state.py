"""An account that cannot receive (revoked or deleted, R-LIFE-1..5) → 550 5.2.1. A locked account
still receives (RECEIVE_STATES): locking stops access, not the agency's incoming mail (R-ACC-2)."""

from smtp import replies
from smtp.pipeline import PASS, RcptContext, Verdict, refuse
from storage.api import RECEIVE_STATES


async def check(ctx: RcptContext) -> Verdict:
    if ctx.account is not None and ctx.account.state not in RECEIVE_STATES:
        return refuse(replies.S550_MAILBOX_DISABLED, f"{ctx.address} is {ctx.account.state}")
    return PASS
