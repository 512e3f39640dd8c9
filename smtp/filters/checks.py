"""DATA-stage pipeline checks of the content filters (registered in smtp/pipeline/checks).

``virus`` (clamd) first: an infected message is refused whatever else is said of it. ``milter``
next (each configured milter in order), then ``spam`` (spamd). A check that has no daemon
configured passes at once. The message is read from the spool once, shared by the checks
(``ctx.extra["bytes"]``); a message larger than a filter's ``max_size`` is not given to it and
says so in ``X-Filter-Unscanned``.
"""

from __future__ import annotations

import logging

from mailserver.policy import metrics
from smtp import replies
from smtp.filters import policy
from smtp.filters.headers import apply, split_fields, without
from smtp.filters.milter import Envelope
from smtp.outbound.hygiene import read_header
from smtp.pipeline import PASS, DataContext, Verdict, refuse

log = logging.getLogger("smtp.filters")

#: Messages up to this size are read from the spool on the loop (memory, or one small read).
READ_ON_LOOP = 256 * 1024

#: What a filter that gives no usable answer raises: a time-out, a refused or reset connection, an
#: error reply, a broken protocol (SpamdError, ClamdError, MilterError) or an answer we cannot read.
#: All of them mean the same thing for the message: ``on_failure``.
FAILURES = (Exception,)


async def message_bytes(ctx: DataContext) -> bytes:
    """The message as received (cached for the other checks); the spool is left at 0."""
    data = ctx.extra.get("bytes")
    if data is None:

        def read() -> bytes:
            ctx.spool.seek(0)
            got = ctx.spool.read()
            ctx.spool.seek(0)
            return got

        data = read() if ctx.size <= READ_ON_LOOP else await ctx.call(read)
        ctx.extra["bytes"] = data
    return data


def failed(ctx: DataContext, name: str, on_failure: str, reason: str) -> Verdict:
    """A filter gave no answer: fail closed (451 4.7.1, the sender retries) or open (deliver)."""
    metrics.VERDICTS.labels(name.split()[0], "unscanned").inc()
    if on_failure == "tempfail":
        log.warning("%s did not scan the message (%s): deferred", name, reason)
        return refuse(replies.S451_FILTER, f"{name}: {reason}")
    log.warning("%s did not scan the message (%s): delivered unscanned", name, reason)
    return Verdict(headers=policy.unscanned_header(name, reason))


def to_junk(ctx: DataContext, reason: str) -> None:
    ctx.extra["folder"] = ctx.filters.cfg.junk_folder
    ctx.extra.setdefault("junk_reasons", []).append(reason)


async def virus(ctx: DataContext) -> Verdict:
    f = ctx.filters
    if f is None or f.clamd is None or ctx.spool is None:
        return PASS
    if ctx.size > f.clamd.cfg.max_size:
        return Verdict(headers=policy.unscanned_header("clamd", "too large"))
    try:
        found = await f.clamd.scan(await message_bytes(ctx))
    except FAILURES as e:
        return failed(ctx, "clamd", f.clamd.cfg.on_failure, type(e).__name__ if not str(e) else f"{type(e).__name__}: {e}")
    metrics.VERDICTS.labels("clamd", "virus" if found is not None else "clean").inc()
    if found is not None:
        return refuse(replies.S554_VIRUS, f"clamd: {found}")
    return PASS


async def strip_forged_spam_fields(ctx: DataContext) -> None:
    """Remove ``X-Spam-*`` fields the message came with (MX, spamd configured): only ours may say
    what spamd found, and users' rules trust them. The stored header section becomes the edited
    one (as after a milter's edits); the body follows from the spool."""
    if "head" in ctx.extra:
        head = ctx.extra["head"]
    else:
        data = ctx.extra.get("bytes")
        if data is not None:
            end = data.find(b"\r\n\r\n")
            head, body_at = (data[: end + 4], end + 4) if end >= 0 else (data, len(data))
        else:
            head, body_at = await ctx.call(read_header, ctx.spool)
        if b"x-spam-" not in head.lower():
            return
        ctx.extra["body_at"] = body_at
    fields = split_fields(head)
    kept = without(fields, "X-Spam-")
    if kept is None:
        return
    log.info("id=%s removed %d forged X-Spam field(s)", ctx.extra.get("tx_id", ""), len(fields) - len(kept))
    ctx.extra["head"] = b"".join(kept) + b"\r\n"
    ctx.parsed = None


async def spam(ctx: DataContext) -> Verdict:
    f = ctx.filters
    if f is None or f.spamd is None or ctx.spool is None:
        return PASS
    if ctx.peer.authenticated:  # submission: spamd only when configured, and only to refuse
        return await outgoing_spam(ctx)
    cfg = f.spamd.cfg
    await strip_forged_spam_fields(ctx)
    if ctx.size > cfg.max_size:
        return Verdict(headers=policy.unscanned_header("spamd", "too large"))
    try:
        result = await f.spamd.check(await message_bytes(ctx))
    except FAILURES as e:
        return failed(ctx, "spamd", cfg.on_failure, type(e).__name__)
    action = policy.spam_action(result.score, cfg.junk_score, cfg.reject_score)
    metrics.VERDICTS.labels("spamd", {"reject": "spam_rejected", "junk": "spam_junk"}.get(action, "ham")).inc()
    if action == "reject":
        return refuse(replies.S550_SPAM, f"spamd: score {result.score:.1f} {','.join(result.rules)[:200]}")
    if action == "junk":
        to_junk(ctx, f"spam score {result.score:.1f}")
    return Verdict(headers=policy.spam_headers(result, f.hostname))


async def outgoing_spam(ctx: DataContext) -> Verdict:
    """Submission (``filters.spamd.submission``): our own users' mail above ``reject_score`` is
    refused (a stolen password sending spam); nothing is filed or marked."""
    f = ctx.filters
    cfg = f.spamd.cfg
    if not cfg.submission or cfg.reject_score is None or ctx.size > cfg.max_size:
        return PASS
    try:
        result = await f.spamd.check(await message_bytes(ctx))
    except FAILURES as e:
        verdict = failed(ctx, "spamd", cfg.on_failure, type(e).__name__)
        return verdict if verdict.reply is not None else PASS
    if policy.spam_action(result.score, None, cfg.reject_score) == "reject":
        return refuse(replies.S550_SPAM, f"spamd (submission): score {result.score:.1f} {','.join(result.rules)[:200]}")
    return PASS


async def milter(ctx: DataContext) -> Verdict:
    f = ctx.filters
    if f is None or not f.milters or ctx.spool is None:
        return PASS
    data = await message_bytes(ctx)
    end = data.find(b"\r\n\r\n")
    head, body = (data[: end + 4], data[end + 4 :]) if end >= 0 else (data, b"")
    env = Envelope(
        client_ip=ctx.peer.ip, client_name="", helo=ctx.helo, sender=ctx.sender, recipients=tuple(ctx.recipients),
        hostname=f.hostname, queue_id=ctx.extra.get("tx_id", ""),
    )  # fmt: skip
    edits = []
    headers = b""
    for client in f.milters:
        try:
            outcome = await client.check(env, head, body)
        except FAILURES as e:
            verdict = failed(ctx, f"milter {client.cfg.name}", client.cfg.on_failure, type(e).__name__)
            if verdict.reply is not None:
                return verdict
            headers += verdict.headers
            continue
        if outcome.action == "reject":
            return refuse(outcome.reply or replies.S550_MILTER, f"milter {client.cfg.name} rejected")
        if outcome.action == "tempfail":
            return refuse(outcome.reply or replies.S451_MILTER, f"milter {client.cfg.name} tempfail")
        if outcome.quarantine is not None:
            to_junk(ctx, f"milter {client.cfg.name}: {outcome.quarantine}")
            headers += policy.quarantine_header(client.cfg.name, outcome.quarantine)
        edits += outcome.edits
    if edits:
        # The stored message gets the edited header section; the body follows from the spool.
        ctx.extra["head"] = apply(split_fields(head), edits)
        ctx.extra["body_at"] = len(head)
        ctx.parsed = None
    return Verdict(headers=headers)
