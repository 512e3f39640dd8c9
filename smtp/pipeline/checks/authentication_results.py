"""R-SEC-2 on the MX: verify the DKIM signatures and the client's SPF, and record both in an
``Authentication-Results`` header (RFC 8601, ``smtp.authresults``) prepended to the stored
message; the message itself is untouched. Never refuses: the verdict is information for the
reader and for filters. Skipped for authenticated sessions (our own users' submissions) and when
no resolver is configured. A failure of the look-ups is recorded as such by authresults; anything
unexpected is logged and the message delivered without the header."""

import logging

from smtp.authresults import authentication_results
from smtp.pipeline import PASS, DataContext, Verdict

log = logging.getLogger("smtp.pipeline.authentication_results")


async def check(ctx: DataContext) -> Verdict:
    if ctx.peer.authenticated or ctx.resolver is None or ctx.spool is None:
        return PASS
    try:
        header = await authentication_results(
            ctx.spool, ctx.peer.ip, ctx.peer.helo, ctx.sender, ctx.resolver, authserv_id=ctx.authserv_id
        )
    except Exception:  # noqa: BLE001 - verification is information; it must not lose mail
        log.exception("Authentication-Results for <%s> from %s failed", ctx.sender, ctx.peer.ip)
        return PASS
    finally:
        ctx.spool.seek(0)
    return Verdict(headers=header)
