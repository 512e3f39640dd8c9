"""Submission: the envelope sender must be an address the authenticated user may use, else
553 5.7.1 (R-ACC-1: nobody sends as someone else). With the organisation model (``ctx.org``):
the user's own addresses and those ``may_send_as`` allows (a unit mailbox the user heads or holds
send-as on, R-BOX-2); the user is the SASL authentication identity, so logging in to a unit with
an authorization identity gives no more than the delegation. Without it: own addresses only.
Sending as another mailbox is noted in ``ctx.send_as`` so the handler records it in the audit log
once the message is accepted."""

from smtp import replies
from smtp.pipeline import PASS, MailContext, Verdict, refuse


async def check(ctx: MailContext) -> Verdict:
    if not ctx.peer.authenticated:
        return PASS  # the MX listener; submission refuses MAIL before AUTH (530 5.7.0)
    account = await ctx.call(ctx.store.accounts.get_account, ctx.sender) if ctx.sender else None
    actor = ctx.peer.actor_id if ctx.peer.actor_id is not None else ctx.peer.account_id
    if account is None:
        allowed = False
    elif account.id == actor:
        allowed = True
    elif ctx.org is not None:
        allowed = await ctx.call(ctx.org.may_send_as, actor, ctx.sender)
    else:
        allowed = account.id == ctx.peer.account_id
    if not allowed:
        return refuse(replies.S553_SENDER_NOT_OWNED, f"<{ctx.sender}> not allowed for account {actor}")
    if account is not None and account.id != actor:
        ctx.send_as = account.id
    return PASS
