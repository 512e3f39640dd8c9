"""DATA-stage check ``classified`` (submission; registered in smtp/pipeline/checks), R-SEC-3.

The message goes to the extraction processes; the loop only awaits. A clean message passes. A
stamped or unreadable one, per configuration: refused here, held (``ctx.extra["hold"]``: the
handler stores it in the review queue instead of delivering it), or accepted. A refusal is
audited and told here; a hold once the review queue has it (the handler, with its number).
"""

from __future__ import annotations

import logging

from smtp.classified import refusal
from smtp.filters.checks import message_bytes
from smtp.pipeline import PASS, DataContext, Verdict, refuse
from storage.errors import StoreError

log = logging.getLogger("smtp.classified")


async def check(ctx: DataContext) -> Verdict:
    guard = ctx.classified
    if guard is None or ctx.spool is None:
        return PASS
    outcome = await guard.scanner.scan(await message_bytes(ctx))
    if outcome.verdict == "clean":
        return PASS
    action = guard.action_for(outcome)
    tx_id = ctx.extra.get("tx_id", "")
    log.warning("id=%s classified guard: %s in %s (%s %s) from <%s>: %s", tx_id, outcome.verdict, outcome.part or "-",
                outcome.marking, outcome.detail, ctx.sender, action)  # fmt: skip
    if action == "accept":
        return PASS
    if action == "hold":
        ctx.extra["hold"] = outcome
        return PASS
    if guard.reports is not None:
        try:
            await ctx.call(lambda: guard.reports.report(
                account_id=ctx.peer.account_id, actor_id=ctx.peer.actor_id, sender=ctx.sender, outcome=outcome,
                action="refuse", tx_id=tx_id))  # fmt: skip
        except StoreError as e:  # the refusal stands; the audit gap is logged loudly
            log.error("id=%s classified guard: audit or notice failed: %s %s", tx_id, e.kind, e.detail)
    return refuse(refusal(outcome, ctx.utf8), f"classified: {outcome.verdict} {outcome.marking} in {outcome.part}")
