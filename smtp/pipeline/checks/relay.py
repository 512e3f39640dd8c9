"""Never an open relay (R-SEC-1, R-PROTO-2): a recipient outside our domains is accepted only from
an authenticated client (submission, issue 7); otherwise 550 5.7.1."""

from smtp import replies
from smtp.pipeline import PASS, RcptContext, Verdict, refuse


async def check(ctx: RcptContext) -> Verdict:
    ctx.local = await ctx.call(ctx.store.is_local_domain, ctx.domain)
    if ctx.local or ctx.peer.authenticated:
        return PASS
    return refuse(replies.S550_RELAY_DENIED, f"relay to {ctx.domain} from {ctx.peer.ip}")
