"""Our MTA-STS policy (RFC 8461 3.2) at ``/.well-known/mta-sts.txt``, for senders that reach the
portal as ``https://mta-sts.<domain>/``. Built once from ``mta_sts`` in the configuration; the
``_mta-sts.<domain>`` TXT record that announces it is published by the operator
(docs/operations.md): its ``id`` must change whenever this policy does."""

from __future__ import annotations

from twisted.web import resource, server

from config.settings import Settings


def policy_text(settings: Settings) -> bytes:
    """The policy body: CRLF lines, ``mx`` defaulting to our hostname (pure)."""
    sts = settings.mta_sts
    lines = ["version: STSv1", f"mode: {sts.mode}"]
    lines += [f"mx: {mx}" for mx in (sts.mx or (settings.hostname,))]
    lines.append(f"max_age: {sts.max_age}")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


class Policy(resource.Resource):
    isLeaf = True

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.body = policy_text(settings)

    def render_GET(self, request: server.Request) -> bytes:
        request.setHeader(b"Content-Type", b"text/plain")
        request.setHeader(b"Cache-Control", b"max-age=300")
        return self.body
