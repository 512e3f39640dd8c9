"""``postmaster@`` and ``abuse@`` of every local domain reach the accounts the operator chose
(config ``role_addresses``; RFC 5321 4.5.1: postmaster must be accepted, RFC 2142: abuse). The
recipient is looked up as the configured address from here on (existence, state, quota); the
envelope and the trace keep the address the sender wrote. Also what makes the server's own
notices (sent from postmaster@) answerable."""

from smtp.pipeline import PASS, RcptContext, Verdict


async def check(ctx: RcptContext) -> Verdict:
    if not ctx.local or ctx.roles is None:
        return PASS
    target = ctx.roles.target(ctx.address.rsplit("@", 1)[0])
    if target is not None:
        ctx.address = target
    return PASS
