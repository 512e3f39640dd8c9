"""The server's event counters and latency histograms, one place for their names (prometheus-client).

Front ends count what happens (``RECEIVED.labels(...).inc()``); mailserver/web/metrics.py serves
them on ``/metrics`` beside the store's figures. The instruments live in prometheus-client's
default registry: one set per process. Under ``serve --workers N`` the parent sets
``PROMETHEUS_MULTIPROC_DIR`` before anything imports prometheus-client (mailserver/app.py),
so every worker writes its counts to memory-mapped files there and a scrape answered by any
worker sums them all. Labels are small closed sets (protocol, result, reason, verdict): never an
address or a client, which would grow without bound.

Why here: smtp/, imap/ and pop3/ may import ``mailserver.policy`` and nothing else of
``mailserver``; prometheus-client imports no framework (no Twisted, no asyncio).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

#: seconds: from a fast local delivery (ms) up to a large message or a slow filter (tens of s)
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

RECEIVED = Counter("mailserver_smtp_messages_received", "Messages accepted by SMTP (250 after DATA).", ["service"])
DELIVERED = Counter("mailserver_smtp_deliveries", "Local mailbox deliveries (one per recipient).")
REFUSED = Counter("mailserver_smtp_refused", "SMTP commands refused, by command and reason (the check that refused).",
                  ["command", "reason"])
BOUNCES = Counter("mailserver_bounces", "Delivery status notifications (DSN) sent, by action.", ["action"])
LOGINS = Counter("mailserver_logins", "Login attempts by protocol and result (ok, fail).", ["protocol", "result"])
VERDICTS = Counter("mailserver_filter_verdicts", "Content filter verdicts (spam, virus, ...) by filter and verdict.",
                   ["filter", "verdict"])
QUEUE = Counter("mailserver_queue_attempts", "Outbound queue delivery attempts by outcome "
                "(delivered, deferred, failed).", ["outcome"])
SMTP_DATA_SECONDS = Histogram("mailserver_smtp_data_seconds", "Time from DATA to the final reply.",
                              buckets=_BUCKETS)
IMAP_COMMAND_SECONDS = Histogram("mailserver_imap_command_seconds", "Time to answer FETCH and SEARCH (UID or not).",
                                 ["command"], buckets=_BUCKETS)
