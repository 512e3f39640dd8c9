"""R-SEC-2 on the MX: verify the DKIM signatures and the client's SPF, evaluate DMARC (RFC 7489,
smtp/filters/dmarc.py) from them, and record all three in an ``Authentication-Results`` header
(RFC 8601, ``smtp.authresults``) prepended to the stored message; the message itself is untouched.
Skipped for authenticated sessions (our own users' submissions) and when no resolver is
configured. A failure of the look-ups is recorded as such by authresults; anything unexpected is
logged and the message delivered without the header.

DMARC is the only part that may act (config ``filters.dmarc``): a failing message whose From
domain publishes ``p=reject`` is refused at end of DATA (550 5.7.1), ``p=quarantine`` is filed
into Junk.

DKIM verification reads the whole message into memory (dkimpy canonicalises the body in pure
Python): for a 28 MB message that is ~0.8 s and ~130 MB. A message without any DKIM-Signature
field gets the same result ("dkim=none") from its header section alone, so only that is passed
(bench/big_attachment.py: accept time and memory as without the check)."""

import logging
import re

from smtp import replies
from smtp.authresults import format_header, verify
from smtp.filters import dmarc
from smtp.filters.checks import to_junk
from smtp.outbound.hygiene import read_header
from smtp.pipeline import PASS, DataContext, Verdict, refuse

log = logging.getLogger("smtp.pipeline.authentication_results")

_SIGNED = re.compile(rb"(?im)^dkim-signature[ \t]*:")


async def check(ctx: DataContext) -> Verdict:
    if ctx.peer.authenticated or ctx.resolver is None or ctx.spool is None:
        return PASS
    try:
        head = ctx.head if ctx.head is not None else await ctx.call(lambda: read_header(ctx.spool)[0])
        signed = _SIGNED.search(head) is not None
        dkim_results, spf = await verify(ctx.spool if signed else head, ctx.peer.ip, ctx.peer.helo, ctx.sender, ctx.resolver)
        result = None
        cfg = ctx.filters.cfg.dmarc if ctx.filters is not None else None
        if cfg is not None and cfg.enabled:
            result = await dmarc.check(
                head, ctx.resolver, spf=spf.result, spf_domain=spf.domain,
                dkim_pass_domains=[d.domain for d in dkim_results if d.result == "pass"], sample=ctx.filters.sample(),
            )  # fmt: skip
        header = format_header(ctx.authserv_id, dkim_results, spf, ctx.sender, ctx.peer.helo,
                               (result.result, result.domain) if result else None)  # fmt: skip
    except Exception:  # noqa: BLE001 - verification is information; it must not lose mail
        log.exception("Authentication-Results for <%s> from %s failed", ctx.sender, ctx.peer.ip)
        return PASS
    finally:
        ctx.spool.seek(0)
    if result is not None and result.result == "fail":
        if result.policy == "reject" and cfg.reject:
            return refuse(replies.S550_DMARC, f"DMARC p=reject of {result.domain}")
        if result.policy == "reject" or (result.policy == "quarantine" and cfg.quarantine):
            to_junk(ctx, f"DMARC p={result.policy} of {result.domain}")
    return Verdict(headers=header)
