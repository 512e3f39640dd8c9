"""MAIL FROM ... SIZE=n over the whole-message limit → 552 5.3.4 before any data is sent (RFC 1870)."""

from smtp import replies
from smtp.pipeline import PASS, MailContext, Verdict, refuse


async def check(ctx: MailContext) -> Verdict:
    if ctx.declared_size is not None and ctx.declared_size > ctx.limits.max_message_size:
        return refuse(replies.S552_MESSAGE_TOO_BIG, f"declared size {ctx.declared_size}")
    return PASS
