"""Submission: the login of this connection must still hold at each MAIL, else 530 5.7.0.

AUTH happens once per connection and a client may send many messages on it; an account revoked
or locked since (R-LIFE-*, R-ACC-2), deleted, or whose password was reset (R-PASS-4; a unit
mailbox's at handover, R-BOX-3) sends nothing more. A delegate acting as a unit mailbox is
judged on its own password and on the unit's state (storage.api.why_lapsed)."""

from smtp import replies
from smtp.pipeline import PASS, MailContext, Verdict, refuse
from storage.api import why_lapsed


async def check(ctx: MailContext) -> Verdict:
    peer = ctx.peer
    if not peer.authenticated or peer.actor_id is None:
        return PASS  # the MX listener; submission refuses MAIL before AUTH (530 5.7.0)
    actor = await ctx.call(ctx.store.accounts.get_account_by_id, peer.actor_id)
    reason = why_lapsed(actor, peer.actor_password_changed_at)
    if reason is None and peer.account_id is not None and peer.account_id != peer.actor_id:
        reason = why_lapsed(await ctx.call(ctx.store.accounts.get_account_by_id, peer.account_id), None, check_password=False)
    if reason is not None:
        return refuse(replies.S530_LOGIN_LAPSED, f"account {peer.actor_id}: {reason}")
    return PASS
