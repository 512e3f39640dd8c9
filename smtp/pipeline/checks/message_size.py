"""The message as received was over the size limit (552 5.3.4) or had a line over the sane cap
(500 5.5.2); both were detected while streaming (smtp/data.py)."""

from smtp import replies
from smtp.data import DataState
from smtp.pipeline import PASS, DataContext, Verdict, refuse


async def check(ctx: DataContext) -> Verdict:
    if ctx.data_state is DataState.TOO_BIG:
        return refuse(replies.S552_MESSAGE_TOO_BIG, f"message size {ctx.size}")
    if ctx.data_state is DataState.LINE_TOO_LONG:
        return refuse(replies.S500_LINE_TOO_LONG, "line over the cap")
    return PASS
