"""The outbound delivery worker on the server's asyncio loop (R-PROTO-2).
One module: the worker is one class sharing its scheduling state (session, DNS, DSNs are apart).

Loop: deliver owed DSNs (after a bounce, else every ``queue.poll``) → claim due (message,
domain) groups up to the free connection slots (at most every 20 ms) → one task per claim
(bounded per domain) → sleep until woken by ``enqueue``, a finished task, the next due time or
``queue.poll``. Everything blocking (the store, DKIM signing) runs in worker
threads. State lives in the store (storage/sql/queue.py), so a restart loses nothing: claims of a
dead process are taken again when their lease runs out (at once on SQLite, the single process).

Retry schedule: a temporary failure waits ``retry_first`` seconds, doubling up to ``retry_max``;
after ``give_up_after`` the recipient fails (status 4.4.7). One "delayed" DSN is sent once a
recipient has waited ``delay_warning_after``. Permanent failures and give-ups get a "failed" DSN
in the sender's INBOX, owed durably (state ``bounce``) until delivered. Each report honours the
client's RFC 3461 parameters (NOTIFY decides which are owed, RET=FULL returns the message, ENVID
and ORCPT are echoed); a recipient with NOTIFY=SUCCESS relayed to a hop without DSN gets a
"relayed" report (a hop with DSN got the parameters and reports itself).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import datetime as _dt
from dataclasses import dataclass
import functools
import logging
import os
import socket
import ssl
from typing import Callable, Sequence

from mailserver.policy import metrics
from config.settings import Settings
from smtp.dkim import DkimSigner
from smtp.outbound import client, dsn, tlsrpt
from smtp.outbound.dns import DnsError, DnsTempError, Resolver
from smtp.outbound.memo import OnceCache
from smtp.outbound.route import NoRoute, next_hops
from smtp.outbound.dane import Tlsa
from smtp.outbound.mtasts import PolicyCache, mx_matches
from smtp.outbound.tlsrequired import tls_optional
from storage.api import BlobRef, DeliveryTarget
from storage.mime.downgrade import downgrade, needs_utf8
from storage.api import BOUNCE, QUEUED, Claim, EnvelopeOptions, Outcome, QueuedMessage, QueuedRecipient, RecipientDsn
from smtp.dsn_params import wants

log = logging.getLogger("smtp.outbound")
_CLAIM_EVERY = 0.02  # seconds: at most this often a claim job (bursts are claimed together)


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def backoff(attempts: int, first: int, maximum: int) -> int:
    """Seconds to wait after the ``attempts``-th failed attempt: first, 2×, 4× … up to maximum."""
    return min(maximum, first * 2 ** max(0, min(attempts - 1, 30)))


def strip_return_path(message: bytes) -> bytes:
    """A Return-Path belongs to final delivery (RFC 5321 4.4); never send one on."""
    while message[:12].lower() == b"return-path:":
        end = message.find(b"\r\n")
        if end < 0:
            return message
        message = message[end + 2 :]
        while message[:1] in (b" ", b"\t"):
            end = message.find(b"\r\n")
            message = message[end + 2 :] if end >= 0 else b""
    return message


class OutboundService:
    def __init__(
        self,
        settings: Settings,
        store,
        *,
        resolver: Resolver | None = None,
        signer: DkimSigner | None = None,
        clock: Callable[[], _dt.datetime] = _utcnow,
        mx_port: int = 25,
    ) -> None:
        self.settings = settings
        self.q = settings.queue
        self.store = store
        self.queue = store.queue
        self.resolver = resolver or Resolver.from_settings(settings.dns)
        self.signer = signer or DkimSigner.from_settings(settings)
        self._dsn_check_at = 0.0  # loop time of the next look for owed DSNs
        self._unrecorded: list[tuple[list[Outcome], _dt.datetime, asyncio.Future]] = []
        self._recorder: asyncio.Task | None = None
        self._signatures = OnceCache()  # (blob, form) → DKIM fields: once per message, not per destination
        self.clock = clock
        self.mx_port = mx_port  # SMTP port of MX hosts: 25 (tests use a free port)
        self.owner = owner_name(os.getpid())
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()  # one per open destination run (≈ connection)
        self._runs: dict[str, int] = {}  # domain → running destination runs
        self._pending: dict[str, collections.deque[Claim]] = {}  # claimed, not started
        self._outstanding = 0  # claims pending or being delivered
        self._main: asyncio.Task | None = None
        self._stopping = False
        self._tls: dict[bool, ssl.SSLContext] = {}
        self._sts: PolicyCache | None = None  # MTA-STS policies (RFC 8461), made at start()
        self._tlsrpt = tlsrpt.Recorder() if settings.mta_sts.tls_reports else None  # RFC 8460 counts
        self._reported_day: _dt.date | None = None  # the UTC day whose earlier days were reported
        # Its own threads: store writes block a thread until the group commit, and the default
        # executor (cores + 4 threads) is shared with SMTP delivery; starving it slowed both.
        self._executor = concurrent.futures.ThreadPoolExecutor(self.q.concurrency + 4, thread_name_prefix="outbound")
        self._timeouts = client.Timeouts(self.q.connect_timeout, self.q.command_timeout, self.q.data_timeout)

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self, replaces: Sequence[int] = ()) -> None:
        """``replaces``: process ids of dead workers on this host (``serve --workers``), whose
        claims are taken back at once instead of when their lease runs out."""
        loop = asyncio.get_running_loop()
        self._tls = await loop.run_in_executor(self._executor, _tls_contexts, self.q.ca_file)
        sts = self.settings.mta_sts
        if sts.outbound:
            self._sts = PolicyCache(self.resolver, self._tls[True], port=sts.policy_port, timeout=sts.fetch_timeout,
                                    clock=self.clock)  # fmt: skip
        if self.store.is_sqlite:  # the only process: nothing can still be working on a claim
            released = await loop.run_in_executor(self._executor, self.queue.release)
            if released:
                log.info("released %d claimed recipients of the previous run", released)
        for pid in replaces:
            released = await loop.run_in_executor(self._executor, self.queue.release, owner_name(pid))
            if released:
                log.info("released %d recipients claimed by dead worker %d", released, pid)
        self._main = asyncio.create_task(self._run(), name="outbound")

    async def stop(self, timeout: float = 10) -> None:
        """Finish the transactions on the wire (up to ``timeout``), record them, take no more.
        Claims not started stay in the store and are taken again at the next start."""
        self._stopping = True
        if self._main:
            self._main.cancel()
            await asyncio.gather(self._main, return_exceptions=True)
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._recorder is not None:
            await asyncio.gather(self._recorder, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- producers ------------------------------------------------------------------------------
    async def enqueue(self, blob: BlobRef | str, sender: str, recipients: Sequence[str], *, tx_id: str | None = None,
                      options: EnvelopeOptions | None = None) -> int:  # fmt: skip
        """Durably queue ``blob`` for remote ``recipients`` (returns after the commit: say 250).
        ``options``: the client's DSN parameters and REQUIRETLS, kept for the next hop."""
        # awaited, not waited for in a thread: no worker is parked per message in the commit
        message_id = await asyncio.wrap_future(self.queue.enqueue_soon(blob, sender, list(recipients), tx_id=tx_id,
                                                                       now=self.clock(), options=options))  # fmt: skip
        log.info("id=%s queued as %d from=<%s> rcpts=%d", tx_id, message_id, sender, len(recipients))
        self.wake()
        return message_id

    def wake(self) -> None:
        self._wake.set()

    def _dsns_owed(self) -> None:
        """A bounce was recorded: look for owed DSNs at once (otherwise every ``queue.poll``)."""
        self._dsn_check_at = 0.0
        self.wake()

    # -- the loop -------------------------------------------------------------------------------
    # Claimed (message, domain) groups wait in a per-domain deque; each "destination run" is a
    # task holding one SMTP session that delivers that domain's claims one after another (one
    # connection and TLS handshake for many messages). Runs are bounded per domain
    # (queue.per_domain / queue.domains.*.connections) and in total (queue.concurrency); claims
    # in hand are bounded so leases do not run out while they wait.

    @property
    def _claim_room(self) -> int:
        return self.q.concurrency * 8 - self._outstanding

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_claim = -_CLAIM_EVERY
        while not self._stopping:
            try:
                if self._dsn_check_at <= loop.time():
                    self._dsn_check_at = loop.time() + self.q.poll
                    await self._send_owed_dsns()
                    if self._tlsrpt is not None:
                        await self._tls_report_tick()
                room = min(self._claim_room, 256)
                claims = []
                if room > 0:
                    # Messages submitted together are claimed together: one claim job for a
                    # burst instead of one per message (costs a message at most 20 ms).
                    if (pause := last_claim + _CLAIM_EVERY - loop.time()) > 0:
                        await asyncio.sleep(pause)
                    last_claim = loop.time()
                    claims = await loop.run_in_executor(
                        self._executor, lambda: self.queue.claim(room, owner=self.owner, lease=self.q.lease, now=self.clock())
                    )
                for claim in claims:
                    self._pending.setdefault(claim.domain, collections.deque()).append(claim)
                    self._outstanding += 1
                self._start_runs()
                if room <= 0:
                    delay = float(self.q.poll)  # a finished run wakes us
                elif len(claims) == room:
                    delay = 0.0  # there may be more due
                else:
                    delay = await self._sleep_time()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is down, say: keep the loop alive and retry later
                log.exception("outbound loop failed; retrying in %ss", self.q.poll)
                delay = float(self.q.poll)
            if delay > 0:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
                # lands as the event is set, and stop() then waited for this loop for ever.
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            self._wake.clear()

    async def _sleep_time(self) -> float:
        due = await asyncio.get_running_loop().run_in_executor(self._executor, self.queue.next_due, self.clock())
        if due is None:
            return float(self.q.poll)
        return max(0.05, min(float(self.q.poll), (due - self.clock()).total_seconds()))

    def _domain_limit(self, domain: str) -> int:
        opts = self.q.domains.get(domain)
        return (opts and opts.connections) or self.q.per_domain

    def _start_runs(self) -> None:
        for domain, waiting in self._pending.items():
            started = 0
            while (started < len(waiting) and len(self._tasks) < self.q.concurrency
                   and self._runs.get(domain, 0) < self._domain_limit(domain)):  # fmt: skip
                started += 1
                self._runs[domain] = self._runs.get(domain, 0) + 1
                task = asyncio.create_task(self._destination_run(domain), name=f"outbound {domain}")
                self._tasks.add(task)
                task.add_done_callback(lambda t, d=domain: self._finished(t, d))
        for domain in [d for d, waiting in self._pending.items() if not waiting and not self._runs.get(d)]:
            del self._pending[domain]

    def _finished(self, task: asyncio.Task, domain: str) -> None:
        self._tasks.discard(task)
        self._runs[domain] -= 1
        if not self._runs[domain]:
            del self._runs[domain]
        if not task.cancelled() and task.exception() is not None:
            log.error("outbound run for %s failed", domain, exc_info=task.exception())
        self._wake.set()

    async def _destination_run(self, domain: str) -> None:
        """Deliver the domain's waiting claims over one session. While one message is on the
        wire the next one is read and DKIM-signed in a thread (the signature made once per
        message, ``_signatures``), and results are recorded without waiting (the writer commits
        them in groups): the session never idles on the store. A crash before a result is
        recorded means that message is sent again (at least once)."""
        loop = asyncio.get_running_loop()
        run = _Run()
        waiting = self._pending.get(domain)
        recording: set[asyncio.Future] = set()
        ahead: tuple[Claim, asyncio.Future] | None = None
        try:
            while (waiting or ahead) and not self._stopping:
                if ahead is None:
                    claim = waiting.popleft()
                    data = loop.run_in_executor(self._executor, self._prepare, claim.message.blob_sha)
                else:
                    (claim, data), ahead = ahead, None
                if waiting:
                    nxt = waiting.popleft()
                    ahead = (nxt, loop.run_in_executor(self._executor, self._prepare, nxt.message.blob_sha))
                try:
                    recorded = await self._deliver(claim, run, data)
                except Exception:
                    self._outstanding -= 1  # its lease runs out and it is tried again
                    raise
                recording.add(recorded)
                recorded.add_done_callback(self._recorded)
                recorded.add_done_callback(recording.discard)
        finally:
            if ahead is not None:
                self._outstanding -= 1
                ahead[1].cancel()
            if run.session is not None:
                await run.session.close()
            if recording:
                await asyncio.gather(*recording, return_exceptions=True)

    def _recorded(self, fut: asyncio.Future) -> None:
        self._outstanding -= 1
        if not fut.cancelled() and fut.exception() is not None:
            log.error("recording a delivery result failed (the lease will run out and it is retried)",
                      exc_info=fut.exception())  # fmt: skip

    # -- one claim ------------------------------------------------------------------------------
    async def _deliver(self, claim: Claim, run: "_Run", data: asyncio.Future) -> asyncio.Future:
        """Attempt ``claim``; returns the future of recording its outcome."""
        msg = claim.message
        recipients = [r.address for r in msg.recipients]
        replies = await self._attempt(claim, recipients, run, data)
        now = self.clock()
        outcomes, warn = self._decide(claim, replies, now)
        if warn:
            await self._warn(claim, warn, replies, now)
        relayed = [r for r in msg.recipients if replies[r.address].ok and wants(r.notify, dsn.RELAYED)]
        if relayed and not run.offers_dsn:
            await self._relayed(claim, relayed, replies, now)
        for o, r in zip(outcomes, msg.recipients):
            reply = replies[r.address]
            state = {None: "sent", QUEUED: "deferred", BOUNCE: "bounced"}[o.state]
            metrics.QUEUE.labels({None: "delivered", QUEUED: "deferred", BOUNCE: "failed"}[o.state]).inc()
            log.info("queue=%d to=<%s> relay=%s status=%s reply=%s %s", msg.id, r.address, reply.remote or "none",
                     state, reply.code or "-", " ".join(reply.text.split())[:300])  # fmt: skip
        recorded = self._record(outcomes, now)
        if any(o.state == BOUNCE for o in outcomes):
            recorded.add_done_callback(lambda _f: self._dsns_owed())
        return recorded

    def _record(self, outcomes: list[Outcome], now: _dt.datetime) -> asyncio.Future:
        """Record ``outcomes`` with those of other transactions finishing meanwhile: while one
        ``queue.record`` is in the writer the next ones gather, then go in as one job (one
        statement set for many messages instead of a job each). ``last_attempt_at`` becomes
        the latest ``now`` of the group (milliseconds apart)."""
        future = asyncio.get_running_loop().create_future()
        self._unrecorded.append((outcomes, now, future))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_groups(), name="outbound record")
        return future

    async def _record_groups(self) -> None:
        while self._unrecorded:
            group, self._unrecorded = self._unrecorded, []
            outcomes = [o for item in group for o in item[0]]
            now = max(item[1] for item in group)
            error: BaseException | None = None
            try:
                await asyncio.wrap_future(self.queue.record_soon(outcomes, now=now))
            except Exception as exc:  # noqa: BLE001 - each waiting run learns it (leases run out, retried)
                error = exc
            finally:
                for _o, _n, future in group:
                    if future.done():
                        continue
                    if error is not None:
                        future.set_exception(error)
                    elif self._recorder is not None and self._recorder.cancelling():
                        future.cancel()
                    else:
                        future.set_result(None)

    async def _attempt(
        self, claim: Claim, recipients: list[str], run: "_Run", data: asyncio.Future
    ) -> dict[str, client.Reply]:
        """Route once per run (the same answer for every claim of the run), then one
        transaction on the run's session; a message with its own TLS needs (REQUIRETLS, or
        ``TLS-Required: No`` where a policy requires TLS) gets a session of its own."""
        msg = claim.message
        if run.hops is None and run.route_error is None:
            try:
                run.hops = await next_hops(claim.domain, self.settings.routes, self.resolver, mx_port=self.mx_port)
            except NoRoute as exc:
                run.route_error = client.Reply(550, f"{exc.status} {exc.text}", "")
            except DnsTempError as exc:
                run.route_error = client.Reply(0, f"DNS: {exc}", "")
            else:
                await self._apply_mta_sts(claim.domain, run)
                if run.route_error is None and self.q.dane:
                    await self._apply_dane(claim.domain, run)
        if run.route_error is not None:
            data.cancel()
            return {r: run.route_error for r in recipients}
        out = await data
        opts = self.q.domains.get(claim.domain)
        own = self._own_tls(msg, out, bool(opts and opts.require_tls) or run.sts_enforce)
        if own is not None:
            once = client.Session(run.hops, helo=self.settings.hostname, tls=own, timeouts=self._timeouts,
                                  on_tls=self._tls_noter(claim.domain, run))  # fmt: skip
            try:
                replies = await once.transaction(msg.sender, recipients, out, _options(msg))
                run.offers_dsn = once.offers_dsn
                return replies
            finally:
                await once.close()
        if run.session is None:
            if run.sts_enforce:  # RFC 8461 4.2: TLS with a certificate valid for the MX host, or wait
                tls = client.TlsPolicy(True, self._tls[True], dane=run.dane)
            else:
                tls = client.TlsPolicy(bool(opts and opts.require_tls), self._tls[self.q.verify_certificates], dane=run.dane)
            run.session = client.Session(run.hops, helo=self.settings.hostname, tls=tls, timeouts=self._timeouts,
                                         on_tls=self._tls_noter(claim.domain, run))  # fmt: skip
        replies = await run.session.transaction(msg.sender, recipients, out, _options(msg))
        run.offers_dsn = run.session.offers_dsn
        return replies

    async def _apply_mta_sts(self, domain: str, run: "_Run") -> None:
        """An ``enforce`` policy (RFC 8461 4): only the MX hosts it names, verified TLS; when no
        host is left the domain's mail waits (4.7.5), it is never sent elsewhere."""
        if self._sts is None:
            return
        policy = await self._sts.policy(domain)
        run.sts_policy = policy
        if policy is None or policy.mode != "enforce":
            return
        run.sts_enforce = True
        matching = [h for h in run.hops or () if mx_matches(h.host, policy.mx)]
        if not matching:
            names = ", ".join(sorted({h.host for h in run.hops or ()}))
            run.route_error = client.Reply(0, f"4.7.5 MTA-STS: no MX host ({names}) is in the policy of {domain}", "")
        run.hops = matching

    def _tls_noter(self, domain: str, run: "_Run"):
        """What a session calls with each TLS outcome: counted for the day's TLS-RPT report."""
        if self._tlsrpt is None:
            return None
        recorder = self._tlsrpt

        def note(hop, result: str) -> None:
            if run.dane and hop.host in run.dane:
                kind = "tlsa"
            elif run.sts_policy is not None and run.sts_policy.mode != "none":
                kind = "sts"
            else:
                kind = "no-policy-found"
            recorder.note(self.clock().date().isoformat(), domain, kind, hop.host, result)

        return note

    async def _tls_report_tick(self) -> None:
        """Store the counts gathered since the last tick; once per UTC day, report the days before."""
        loop = asyncio.get_running_loop()
        counts = self._tlsrpt.drain()
        if counts:
            await loop.run_in_executor(self._executor, self.queue.add_tls_counts, counts)
        today = self.clock().date()
        if self._reported_day != today:
            await self.send_tls_reports(today)
            self._reported_day = today

    async def send_tls_reports(self, today: _dt.date) -> int:
        """Report every stored day before ``today`` to each domain's rua addresses (RFC 8460 3);
        returns how many reports were queued. The counts are dropped once handled."""
        loop = asyncio.get_running_loop()
        if self._tlsrpt is not None and (counts := self._tlsrpt.drain()):
            await loop.run_in_executor(self._executor, self.queue.add_tls_counts, counts)
        stored = await loop.run_in_executor(self._executor, self.queue.tls_counts, today.isoformat())
        groups: dict[tuple[str, str], list] = {}
        for c in stored:
            groups.setdefault((c.day, c.domain), []).append(c)
        sent = 0
        postmaster = f"postmaster@{self.settings.domains[0]}" if self.settings.domains else f"postmaster@{self.settings.hostname}"
        for (day, domain), counts in sorted(groups.items()):
            try:
                rua = tlsrpt.parse_rua(await self.resolver.txt(f"_smtp._tls.{domain}"))
            except DnsError:
                rua = []
            if not rua:
                continue
            report_id = f"{day}.{domain}@{self.settings.hostname}"
            report = tlsrpt.build_report(domain, day, counts, organisation=self.settings.hostname, contact=postmaster,
                                         report_id=report_id)  # fmt: skip
            raw = tlsrpt.build_message(report, domain=domain, submitter=self.settings.hostname, sender=postmaster,
                                       recipients=rua, now=self.clock())  # fmt: skip
            blob = await loop.run_in_executor(self._executor, self.store.messages.put_blob, raw)
            await self.enqueue(blob, postmaster, rua, tx_id=f"tlsrpt-{day}")
            sent += 1
        days = sorted({day for day, _d in groups})
        if days:
            await loop.run_in_executor(self._executor, self.queue.drop_tls_counts, days)
            log.info("TLS-RPT: %d report(s) queued for %s", sent, ", ".join(days))
        return sent

    async def _apply_dane(self, domain: str, run: "_Run") -> None:
        """TLSA records of each MX host (RFC 7672 2.2), used only from a DNSSEC-validated answer.
        A host whose TLSA look-up fails is not used (it might have records we cannot see)."""
        usable_hops, dane_map = [], {}
        for hop in run.hops or ():
            if hop.host not in dane_map:
                try:
                    texts, secure = await self.resolver.tlsa(f"_{hop.port}._tcp.{hop.host}")
                except DnsTempError as exc:
                    log.info("DANE: TLSA of %s not known (%s): host skipped", hop.host, exc)
                    dane_map[hop.host] = None
                    continue
                records = []
                for text in texts if secure else ():
                    try:
                        records.append(Tlsa.parse(text))
                    except ValueError:
                        log.warning("DANE: malformed TLSA for %s: %r", hop.host, text)
                dane_map[hop.host] = records
            if dane_map[hop.host] is not None:
                usable_hops.append(hop)
        if not usable_hops and run.hops:
            run.route_error = client.Reply(0, f"4.7.5 DANE: the TLSA records of {domain}'s MX hosts cannot be looked up", "")
        run.hops = usable_hops
        run.dane = {host: records for host, records in dane_map.items() if records}

    def _own_tls(self, msg: QueuedMessage, out: client.Outgoing, domain_requires: bool) -> client.TlsPolicy | None:
        """The TLS policy of a message that cannot share the run's session, or None.
        REQUIRETLS (RFC 8689 4.2): a verified certificate and a hop offering REQUIRETLS, never
        cleartext; it wins over ``TLS-Required: No`` (RFC 8689 5), which lifts our own policy."""
        if msg.requiretls:
            return client.TlsPolicy(True, self._tls[True], requiretls=True)
        if out.tls_optional and (domain_requires or self.q.verify_certificates):
            return client.TlsPolicy(False, self._tls[False])
        return None

    def _prepare(self, sha: str) -> client.Outgoing:
        """The bytes to send: the stored body, without Return-Path, DKIM-signed (thread). A UTF-8
        header also gets its ASCII form for a hop without SMTPUTF8, made and signed only when
        such a hop answers: the signature covers the bytes actually sent."""
        raw = strip_return_path(self.store.messages.read_blob(sha))
        signed = self._signatures.get((sha, "as stored"), lambda: self.signer.signature(raw)) + raw
        optional = tls_optional(raw)
        if not needs_utf8(raw):
            return client.Outgoing(signed, tls_optional=optional)
        return client.Outgoing(signed, True, functools.partial(self._ascii_form, sha, raw), tls_optional=optional)

    async def _ascii_form(self, sha: str, raw: bytes) -> bytes:
        def make() -> bytes:
            ascii_raw = downgrade(raw)
            return self._signatures.get((sha, "ascii"), lambda: self.signer.signature(ascii_raw)) + ascii_raw

        return await asyncio.get_running_loop().run_in_executor(self._executor, make)

    def _decide(self, claim: Claim, replies: dict[str, client.Reply], now: _dt.datetime):
        outcomes, warn = [], []
        age = (now - claim.message.created_at).total_seconds()
        for r in claim.message.recipients:
            reply = replies[r.address]
            common = {"recipient_id": r.id, "code": reply.code or None, "reply": reply.text, "remote": reply.remote or None}
            if reply.ok:
                outcomes.append(Outcome(state=None, **common))
            elif reply.permanent:
                outcomes.append(Outcome(state=BOUNCE, **common))
            elif age >= self.q.give_up_after:
                outcomes.append(Outcome(state=BOUNCE, **{**common, "reply": f"gave up: {reply.text}"}))
            else:
                wait = backoff(r.attempts + 1, self.q.retry_first, self.q.retry_max)
                late = (self.q.delay_warning_after is not None and age >= self.q.delay_warning_after and not r.warned
                        and wants(r.notify, dsn.DELAYED))  # fmt: skip
                if late:
                    warn.append(r)
                outcomes.append(Outcome(state=QUEUED, next_attempt_at=now + _dt.timedelta(seconds=wait),
                                        warned=True if late else None, **common))  # fmt: skip
        return outcomes, warn

    # -- DSNs -----------------------------------------------------------------------------------
    async def _warn(self, claim: Claim, late: list[QueuedRecipient], replies: dict[str, client.Reply], now) -> None:
        msg = claim.message
        until = msg.created_at + _dt.timedelta(seconds=self.q.give_up_after)
        reports = [
            dsn.RecipientReport(r.address, dsn.DELAYED, dsn.status_of(replies[r.address].code, replies[r.address].text),
                                _diagnostic(replies[r.address].code, replies[r.address].text), replies[r.address].remote or None, now,
                                r.orcpt)
            for r in late
        ]  # fmt: skip
        try:
            await self._deliver_dsn(msg, dsn.DELAYED, reports, until)
        except Exception:
            log.exception("queue=%d delay notice to <%s> failed", msg.id, msg.sender)

    async def _relayed(self, claim: Claim, relayed: list[QueuedRecipient], replies: dict[str, client.Reply], now) -> None:
        """NOTIFY=SUCCESS and the hop does not speak DSN: our report says "relayed" (RFC 3461 4.1)."""
        msg = claim.message
        reports = [
            dsn.RecipientReport(r.address, dsn.RELAYED, dsn.status_of(replies[r.address].code, replies[r.address].text),
                                _diagnostic(replies[r.address].code, replies[r.address].text),
                                replies[r.address].remote or None, now, r.orcpt)
            for r in relayed
        ]  # fmt: skip
        try:
            await self._deliver_dsn(msg, dsn.RELAYED, reports, None)
        except Exception:
            log.exception("queue=%d relay notice to <%s> failed", msg.id, msg.sender)

    async def _send_owed_dsns(self) -> None:
        loop = asyncio.get_running_loop()
        owed = await loop.run_in_executor(self._executor, self.queue.owed_dsns)
        for msg in owed:
            reports = [
                dsn.RecipientReport(
                    r.address, dsn.FAILED,
                    dsn.status_of(r.last_code, r.last_reply, expired=(r.last_code or 0) < 500),
                    _diagnostic(r.last_code, r.last_reply), r.remote, r.last_attempt_at, r.orcpt,
                )  # fmt: skip
                for r in msg.recipients
                if wants(r.notify, dsn.FAILED)  # NOTIFY=NEVER or without FAILURE: none owed
            ]
            try:
                if reports:
                    await self._deliver_dsn(msg, dsn.FAILED, reports, None)
            except Exception:
                log.exception("queue=%d DSN to <%s> failed; will retry", msg.id, msg.sender)
                continue
            await loop.run_in_executor(self._executor, self.queue.dsn_done, [r.id for r in msg.recipients])

    async def _deliver_dsn(self, msg: QueuedMessage, action: str, reports, until) -> None:
        sender, sha, arrival = msg.sender, msg.blob_sha, msg.created_at
        loop = asyncio.get_running_loop()
        account = await loop.run_in_executor(self._executor, self.store.accounts.get_account, sender) if sender else None
        if account is None:
            log.warning("no local mailbox for <%s>: %s DSN for %s dropped", sender, action,
                        ", ".join(r.address for r in reports))  # fmt: skip
            return

        def build_and_deliver() -> None:
            full = action == dsn.FAILED and msg.ret == "FULL" and msg.size <= dsn.FULL_RETURN_LIMIT
            with self.store.messages.open_blob(sha) as f:
                whole = strip_return_path(f.read()) if full else None  # RET=FULL (RFC 3461 4.3)
                headers = dsn.header_block(whole if full else f.read(64 * 1024))
            body = dsn.build_dsn(hostname=self.settings.hostname, sender=sender, action=action, reports=reports,
                                 original_headers=headers, arrival=arrival, retry_until=until, now=self.clock(),
                                 envid=msg.envid, full_message=whole)  # fmt: skip
            blob = self.store.messages.put_blob(body)
            outcomes = self.store.messages.deliver(blob, [DeliveryTarget(account.id, "INBOX")], internaldate=self.clock())
            if not all(o.ok for o in outcomes):
                log.error("%s DSN for <%s> not stored: %s", action, sender, [o.error for o in outcomes])

        await loop.run_in_executor(self._executor, build_and_deliver)
        metrics.BOUNCES.labels(action).inc()
        log.info("%s DSN to <%s> for %s", action, sender, ", ".join(r.address for r in reports))


@dataclass(slots=True)
class _Run:
    """State of one destination run: its SMTP session, or why the domain cannot be routed."""

    session: client.Session | None = None
    route_error: client.Reply | None = None
    hops: list | None = None  # where the domain's mail goes (routed once per run)
    offers_dsn: bool = False  # the hop of the last transaction announced DSN
    sts_enforce: bool = False  # the domain's MTA-STS policy is "enforce" (RFC 8461)
    dane: dict | None = None  # MX host → its validated TLSA records (RFC 7672)
    sts_policy: object = None  # smtp.outbound.mtasts.Policy of the domain, if any


def _options(msg: QueuedMessage) -> EnvelopeOptions | None:
    """The client's DSN parameters of a queued message, for the next hop (None: none given)."""
    given = {r.address: RecipientDsn(r.notify, r.orcpt) for r in msg.recipients if r.notify or r.orcpt}
    if not (msg.ret or msg.envid or msg.requiretls or given):
        return None
    return EnvelopeOptions(msg.ret, msg.envid, msg.requiretls, given)


def _diagnostic(code: int | None, text: str | None) -> str | None:
    if not text:
        return None
    return f"{code} {text}" if code else text


def _tls_contexts(ca_file=None) -> dict[bool, ssl.SSLContext]:
    verify = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        verify.load_verify_locations(cafile=str(ca_file))
    lax = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    return {True: verify, False: lax}


def owner_name(pid: int) -> str:
    """Who holds a claim: this host and the process id (dead workers' claims are released by it)."""
    return f"{socket.gethostname()}:{pid}"


async def start_outbound(loop: asyncio.AbstractEventLoop | None, settings: Settings, store,
                         replaces: Sequence[int] = ()) -> OutboundService:
    """Entry point for mailserver/app.py: start the worker on the running loop.
    ``loop`` is accepted for symmetry with the other services; the running loop is used."""
    service = OutboundService(settings, store)
    await service.start(replaces)
    return service
