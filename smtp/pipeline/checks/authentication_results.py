"""R-SEC-2 on the MX: verify the DKIM signatures and the client's SPF, and record both in an
``Authentication-Results`` header (RFC 8601, ``smtp.authresults``) prepended to the stored
message; the message itself is untouched. Never refuses: the verdict is information for the
reader and for filters. Skipped for authenticated sessions (our own users' submissions) and when
no resolver is configured. A failure of the look-ups is recorded as such by authresults; anything
unexpected is logged and the message delivered without the header.

DKIM verification reads the whole message into memory (dkimpy canonicalises the body in pure
Python): for a 28 MB message that is ~0.8 s and ~130 MB. A message without any DKIM-Signature
field gets the same result ("dkim=none") from its header section alone, so only that is passed
(bench/big_attachment.py: accept time and memory as without the check)."""

import logging
import re

from smtp.authresults import authentication_results
from smtp.outbound.hygiene import read_header
from smtp.pipeline import PASS, DataContext, Verdict

log = logging.getLogger("smtp.pipeline.authentication_results")

_SIGNED = re.compile(rb"(?im)^dkim-signature[ \t]*:")


def _unsigned_head(spool) -> bytes | None:
    """The header section when no field of it is a DKIM-Signature; None when signed."""
    head, _ = read_header(spool)
    return None if _SIGNED.search(head) else head


async def check(ctx: DataContext) -> Verdict:
    if ctx.peer.authenticated or ctx.resolver is None or ctx.spool is None:
        return PASS
    try:
        if ctx.head is not None:
            head = None if _SIGNED.search(ctx.head) else ctx.head
        else:
            head = await ctx.call(_unsigned_head, ctx.spool)
        header = await authentication_results(
            ctx.spool if head is None else head, ctx.peer.ip, ctx.peer.helo, ctx.sender, ctx.resolver,
            authserv_id=ctx.authserv_id,
        )  # fmt: skip
    except Exception:  # noqa: BLE001 - verification is information; it must not lose mail
        log.exception("Authentication-Results for <%s> from %s failed", ctx.sender, ctx.peer.ip)
        return PASS
    finally:
        ctx.spool.seek(0)
    return Verdict(headers=header)
