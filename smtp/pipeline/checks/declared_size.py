"""MAIL FROM ... SIZE=n over the SIZE we advertise (the quota's whole-message size, capped by
limits.max_message_size) → 552 5.3.4 before any data is sent (RFC 1870, R-QUOTA-1)."""

from smtp import replies
from smtp.pipeline import PASS, MailContext, Verdict, refuse


async def check(ctx: MailContext) -> Verdict:
    limit = ctx.max_size if ctx.max_size is not None else ctx.limits.max_message_size
    if ctx.declared_size is not None and ctx.declared_size > limit:
        return refuse(replies.S552_MESSAGE_TOO_BIG, f"declared size {ctx.declared_size} > {limit}")
    return PASS
