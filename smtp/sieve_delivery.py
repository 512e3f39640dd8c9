"""Users' Sieve filters at delivery (RFC 5228; after the quota and content checks, before the
commit). ``plan`` applies each recipient's forwarding (to other addresses, with or without a
local copy; the script then runs only for a local copy) and runs its active script, saying
where its copy goes (folders and
flags become the targets of the one durable placement); ``after_commit`` then sends what the
scripts asked for: vacation replies (RFC 5230, null reverse-path), redirects, rejections.

A script that fails (or cannot be compiled) leaves that recipient's copy in INBOX and the user is
told, at most once a day per script (RFC 5228 2.10.6). A redirect of a message that already
passed this account (our ``Delivered-To`` header) is dropped and the copy kept: a forwarding loop.
Generated mail to a local address is delivered here; to others it goes to the outbound queue.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import functools
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from email.utils import parseaddr
from typing import BinaryIO, Sequence

from config.sieve import Sieve as SieveSettings
from sieve import notices
from sieve.interpret import Result, RuntimeScriptError, evaluate
from sieve.message import BODY_LIMIT, Envelope, MessageView
from sieve.script import Script, ScriptError, compile_script
from sieve.vacation import build_reply, handle, may_reply
from storage.api import Account, DeliveryTarget, Store

log = logging.getLogger("smtp.sieve")

_DAY = 86400.0

#: Every recipient's script rejected the message: refused in the SMTP dialogue (RFC 5429 2.1.1,
#: no refusal message of ours, so no backscatter); the reason may be Vietnamese, hence not in it.
S550_REJECTED = "550 5.7.1 Message refused by the recipient's mail filter"


@functools.lru_cache(maxsize=512)
def _compiled(text: str) -> Script:
    return compile_script(text)


@dataclass
class Decision:
    """One account's part: ``folders`` to place into (empty: no copy), what to send after."""

    account: Account
    folders: list[tuple[str, frozenset[str]]]
    result: Result | None = None
    script: str = ""
    error: str | None = None


@dataclass
class Plan:
    decisions: dict[int, Decision] = field(default_factory=dict)
    view: MessageView | None = None
    junk: bool = False  # the content checks judged it spam: no vacation reply (RFC 5230 4.6)

    def all_rejected(self, accounts: Sequence[Account]) -> bool:
        """Every one of ``accounts`` rejected (and nothing else to do for them)."""
        found = [self.decisions.get(a.id) for a in accounts]
        return bool(found) and all(d is not None and d.result is not None and d.result.reject is not None
                                   and not d.folders and not d.result.redirects and d.result.vacation is None
                                   for d in found)  # fmt: skip

    def targets(self, account: Account, folder: str, limit: int | None) -> list[DeliveryTarget] | None:
        """The account's targets when its script decided them (None: the default target)."""
        d = self.decisions.get(account.id)
        if d is None:
            return None
        # the implicit or explicit keep goes to the folder the content checks chose (Junk)
        return [DeliveryTarget(account.id, folder if f == "INBOX" else f, flags, quota_limit=limit) for f, flags in d.folders]


class SieveDelivery:
    S550_REJECTED = S550_REJECTED

    def __init__(self, settings: SieveSettings, domains: Sequence[str], hostname: str) -> None:
        self.settings = settings
        self.domains = frozenset(d.lower() for d in domains)
        self.hostname = hostname
        self.zone = _dt.timezone(_dt.timedelta(minutes=(1 if settings.timezone[0] == "+" else -1)
                                               * (int(settings.timezone[1:3]) * 60 + int(settings.timezone[3:]))))  # fmt: skip

    @staticmethod
    def needed(store: Store, accounts: Sequence[Account]) -> bool:
        """On the loop: False when no account has a filter for sure (no thread hand-off)."""
        held = store.sieve.peek_holders()
        return held is None or any(a.id in held for a in accounts)

    def plan(self, store: Store, accounts: Sequence[Account], spool: BinaryIO, prefix: bytes, size: int,
             sender: str) -> Plan:  # fmt: skip
        """Blocking (a store read, the spool): call in a worker. Leaves the spool where it was."""
        held = store.sieve.holders()  # also renews what peek_holders serves on the loop
        ids = [a.id for a in accounts if a.id in held]
        if not ids:
            return Plan()
        scripts = store.sieve.active_scripts(ids)
        forwards = store.sieve.forwards(ids)
        plan = Plan()
        if not scripts and not forwards:
            return plan
        at = spool.tell()
        try:
            raw = prefix + spool.read(BODY_LIMIT)
        finally:
            spool.seek(at)
        view = plan.view = MessageView(raw, size + len(prefix))
        delivered_to = {a.lower() for a in view.raw_header("delivered-to")}
        now = _dt.datetime.now(self.zone)
        for account in accounts:
            if account.id in plan.decisions or (account.id not in scripts and account.id not in forwards):
                continue
            forward = forwards.get(account.id)
            name, text = scripts.get(account.id, ("", ""))
            if (forward is not None and not forward.keep) or not text:  # no local copy, or no script to run
                result = Result(deliveries=[("INBOX", frozenset())] if forward is None or forward.keep else [])
            else:
                try:
                    result = evaluate(_compiled(text), view, Envelope(sender, account.address), now)
                except (ScriptError, RuntimeScriptError) as e:
                    log.warning("sieve script %r of %s failed: %s", name, account.address, e)
                    plan.decisions[account.id] = Decision(account, [("INBOX", frozenset())], None, name, str(e))
                    continue
            if forward is not None:
                result.redirects = list(dict.fromkeys([*forward.targets, *result.redirects]))
            folders = list(result.deliveries)
            if result.redirects and account.address.lower() in delivered_to:
                log.warning("sieve: %s forwarding loop (Delivered-To present), kept instead", account.address)
                result.redirects = []
                if not folders:
                    folders = [("INBOX", frozenset())]
            plan.decisions[account.id] = Decision(account, folders, result, name)
        return plan

    async def after_commit(self, store: Store, plan: Plan, *, spool: BinaryIO, start: int, prefix: bytes, sender: str,
                           outbound, executor: Executor | None, tx_id: str, placed: set[int]) -> None:  # fmt: skip
        """Send what the scripts of ``plan`` asked for; ``spool`` holds the message from ``start``;
        ``placed``: the accounts whose copy was stored (a copy refused for quota sends no
        vacation reply). Never raises."""
        for d in plan.decisions.values():
            try:
                await self._after_one(store, plan, d, spool=spool, start=start, prefix=prefix, sender=sender, outbound=outbound,
                                      executor=executor, tx_id=tx_id, placed=placed)  # fmt: skip
            except Exception:  # the message is stored; a failed side effect must not fail the delivery
                log.exception("id=%s sieve actions of %s failed", tx_id, d.account.address)

    async def _after_one(self, store, plan, d: Decision, *, spool, start, prefix, sender, outbound, executor, tx_id, placed):
        loop = asyncio.get_running_loop()
        now = _dt.datetime.now(self.zone)
        address = d.account.address
        if d.error is not None:
            due = await loop.run_in_executor(executor, store.sieve.vacation_due, d.account.id, "", "sieve-error:" + d.script[:48], time.time(), _DAY)
            if due:
                raw = notices.script_failed(user=address, script=d.script, error=d.error, hostname=self.hostname, now=now)
                await self._send(store, raw, "", address, outbound, executor, tx_id)
            return
        r = d.result
        assert r is not None and plan.view is not None
        if r.redirects:
            def forwarded():
                spool.seek(start)
                return store.messages.put_blob(spool, prefix=f"Delivered-To: {address}\r\n".encode() + prefix)

            blob = await loop.run_in_executor(executor, forwarded)
            for target in r.redirects:
                await self._send(store, blob, sender, target, outbound, executor, tx_id)
            log.info("id=%s sieve: %s redirected to %s", tx_id, address, ", ".join(r.redirects))
        if r.reject is not None and sender:
            raw = notices.rejection(reason=r.reject, recipient=address, sender=sender,
                                    original_subject=(plan.view.header("subject") or [""])[0],
                                    message_id=(plan.view.raw_header("message-id") or [""])[0],
                                    hostname=self.hostname, now=now)  # fmt: skip
            await self._send(store, raw, "", sender, outbound, executor, tx_id)
            log.info("id=%s sieve: %s rejected the message", tx_id, address)
        stored = d.account.id in placed or not d.folders  # not when its copy was refused (quota)
        if r.vacation is not None and stored and not plan.junk:
            await self._vacation(store, plan, d, sender, outbound, executor, tx_id, now)

    async def _vacation(self, store, plan, d: Decision, sender, outbound, executor, tx_id, now) -> None:
        action = d.result.vacation
        own = {d.account.address.lower(), *(a.lower() for a in action.addresses)}
        ok, why = may_reply(plan.view, sender, own)
        if not ok:
            log.info("id=%s sieve: no vacation reply from %s: %s", tx_id, d.account.address, why)
            return
        s = self.settings
        period = min(max(action.seconds, s.vacation_min_days * _DAY), s.vacation_max_days * _DAY)
        due = await asyncio.get_running_loop().run_in_executor(
            executor, store.sieve.vacation_due, d.account.id, sender, handle(action), time.time(), period)
        if not due:
            log.info("id=%s sieve: vacation reply from %s to %s already sent", tx_id, d.account.address, sender)
            return
        if action.from_ and parseaddr(action.from_)[1].lower() not in own:  # RFC 5230 4.4: no forged From
            action = replace(action, from_=None)
        raw = build_reply(action, plan.view, sender=sender, user=d.account.address, hostname=self.hostname, now=now)
        await self._send(store, raw, "", sender, outbound, executor, tx_id)  # RFC 5230 5.1: null reverse-path
        log.info("id=%s sieve: vacation reply from %s to %s", tx_id, d.account.address, sender)

    async def _send(self, store: Store, raw, mail_from: str, rcpt: str, outbound, executor, tx_id: str) -> None:
        """``raw`` (bytes or a stored blob) to ``rcpt``: a local account's INBOX, else the queue."""
        local = rcpt.rpartition("@")[2].lower() in self.domains

        def put():
            blob = raw if not isinstance(raw, bytes) else store.messages.put_blob(raw)
            if local:
                account = store.accounts.get_account(rcpt)
                if account is None:
                    log.warning("id=%s sieve: no local account %s, dropped", tx_id, rcpt)
                    return None
                store.messages.deliver(blob, [DeliveryTarget(account.id, "INBOX", quota_limit=None)])
                return None
            return blob

        blob = await asyncio.get_running_loop().run_in_executor(executor, put)
        if blob is None:
            return
        if outbound is None:
            log.error("id=%s sieve: mail to %s dropped (no outbound queue)", tx_id, rcpt)
            return
        await outbound.enqueue(blob, mail_from, [rcpt], tx_id=tx_id)
