"""R-QUOTA-1 after DATA: at most 20 MB (hcm-q4: 15 MB) of attachments per message, counted as the
decoded bytes the recipient gets. The message is parsed here once (``store.messages.parse_message``, which
decodes base64 and quoted-printable while it scans; broken MIME is counted, never raised), the part
tree measured by ``quota.measure_attachments``, and the parse kept in ``ctx.parsed`` so that
storing the message does not parse it again. Small messages are parsed on the loop (as delivery
would), larger ones in a worker thread.

Each local recipient's own limit applies (classes may differ); a submitted message is also held to
the sender's limit, which covers its remote recipients. Over the limit for every recipient (or for
the sender) → 552 5.3.4 naming the limit and the measured size. Over it for some recipients only:
the others get the message and ``ctx.extra["refused"]`` tells the handler whom to bounce (DSN)."""

from __future__ import annotations

from smtp import quota as q
from smtp.delivery import PARSE_ON_LOOP
from smtp.pipeline import PASS, DataContext, Verdict, refuse


def _measure(ctx: DataContext) -> int:
    try:
        ctx.spool.seek(0)
        ctx.parsed = ctx.store.messages.parse_message(ctx.spool, measure=True)
    finally:
        ctx.spool.seek(0)
    return ctx.quota.measure_attachments(ctx.parsed["structure"]).total_decoded_bytes


def _over(ctx: DataContext, total: int) -> dict:
    """Recipients (account id → Decision) whose attachment limit ``total`` exceeds; one thread
    hand-off for all of them (a group fan-out has hundreds)."""
    refused = {}
    for account in {a.id: a for a in ctx.accounts}.values():
        decision = ctx.quota.check_attachments(account, total)
        if not decision.ok:
            refused[account.id] = decision
    return refused


async def check(ctx: DataContext) -> Verdict:
    if ctx.quota is None or ctx.spool is None:
        return PASS
    total = _measure(ctx) if ctx.size <= PARSE_ON_LOOP else await ctx.call(_measure, ctx)
    ctx.extra["attachment_bytes"] = total
    if total == 0:  # no attachment: no limit can be exceeded
        return PASS
    if ctx.sender_account is not None:
        decision = await ctx.call(ctx.quota.check_attachments, ctx.sender_account, total)
        if not decision.ok:
            return refuse(q.attachments_refused(decision, utf8=ctx.utf8), f"sender limit: {total} > {decision.limit}")
    refused = await ctx.call(_over, ctx, total)
    if refused and len(refused) == len({a.id for a in ctx.accounts}) and not ctx.remote:
        decision = next(iter(refused.values()))
        return refuse(q.attachments_refused(decision, utf8=ctx.utf8), f"attachments {total} > {decision.limit}")
    ctx.extra["refused"] = refused
    return PASS
