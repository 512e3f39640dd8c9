"""More recipients than limits.max_recipients in one transaction → 452 4.5.3 (RFC 5321 4.5.3.1.10:
the client sends the rest in another transaction)."""

from smtp import replies
from smtp.pipeline import PASS, RcptContext, Verdict, refuse


async def check(ctx: RcptContext) -> Verdict:
    if ctx.accepted >= ctx.limits.max_recipients:
        return refuse(replies.S452_TOO_MANY_RCPTS, f"over {ctx.limits.max_recipients} recipients")
    return PASS
