"""Never an open relay (R-SEC-1, R-PROTO-2): a recipient outside our domains is accepted only from
an authenticated client, and only when an outbound queue takes it; otherwise 550 5.7.1
at RCPT, so no remote recipient is ever accepted and then silently dropped."""

from smtp import replies
from smtp.pipeline import PASS, RcptContext, Verdict, refuse


async def check(ctx: RcptContext) -> Verdict:
    # app.py adds settings.domains to the store at start and domains are never removed, so those
    # skip the store; domains added later with the CLI are found by the look-up.
    ctx.local = ctx.domain in ctx.configured_domains or await ctx.call(ctx.store.accounts.is_local_domain, ctx.domain)
    if ctx.local or (ctx.peer.authenticated and ctx.peer.outbound):
        return PASS
    return refuse(replies.S550_RELAY_DENIED, f"relay to {ctx.domain} from {ctx.peer.ip}")
