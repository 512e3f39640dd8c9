"""``Authentication-Results`` (RFC 8601) for inbound mail: DKIM (dkimpy) and SPF (smtp/spf.py).

R-SEC-2: the origin of incoming mail is verified and recorded. The header is prepended by the
inbound pipeline; the message itself is not touched. DNS goes through the one ``Resolver``:
DKIM keys are fetched asynchronously first, then dkimpy verifies in a worker thread with a
``dnsfunc`` that only reads those answers (dkimpy's own resolver is never used; RSA verify is
~1 ms of pure Python, kept off the loop).

Any header coming from our own clients' claims is untrusted: a sender could forge an
Authentication-Results with our authserv-id; removing those is the pipeline's job (RFC 8601 5).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import BinaryIO

import dkim
from dkim.util import InvalidTagValueList, parse_tag_value

from smtp.outbound.dns import DnsTempError, NXDomain, Resolver
from smtp.spf import SpfResult, check_spf

MAX_SIGNATURES = 5  # verify at most this many DKIM-Signature fields (cost bound)
_SAFE = re.compile(r"[^A-Za-z0-9._\-]")
_SAFE_ADDR = re.compile(r"[^A-Za-z0-9._\-+@=]")
_B64 = re.compile(r"[^A-Za-z0-9+/=]")


@dataclass(frozen=True, slots=True)
class DkimResult:
    result: str  # pass | fail | neutral | temperror | permerror | policy
    domain: str
    selector: str
    b: str  # first 8 characters of b= (RFC 6008) to tell signatures apart
    reason: str = ""


def _signatures(message: bytes) -> list[dict[bytes, bytes]]:
    """Tags of the DKIM-Signature fields, top first."""
    d = dkim.DKIM(message)
    found = []
    for name, value in d.headers:
        if name.lower() == b"dkim-signature":
            try:
                found.append(parse_tag_value(value))
            except InvalidTagValueList:
                found.append({})
    return found[:MAX_SIGNATURES]


def _verify(message: bytes, count: int, keys: dict[bytes, bytes | None]) -> list[tuple[str, str]]:
    """dkimpy verification of each signature (thread). ``keys`` maps the TXT names to answers."""

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return keys.get(name.lower().rstrip(b".") + b".")

    results = []
    for idx in range(count):
        d = dkim.DKIM(message)
        try:
            ok = d.verify(idx=idx, dnsfunc=dnsfunc)
            results.append(("pass", "") if ok else ("fail", "signature did not verify"))
        except dkim.ValidationError as exc:
            results.append(("fail", str(exc)))
        except (dkim.KeyFormatError, dkim.MessageFormatError, dkim.ParameterError, dkim.UnknownKeyTypeError) as exc:
            results.append(("permerror", str(exc)))
        except dkim.DKIMException as exc:
            results.append(("temperror", str(exc)))
        except Exception as exc:  # noqa: BLE001 - a hostile message must not break delivery
            results.append(("permerror", f"{type(exc).__name__}"))
    return results


_DKIM_FIELD = re.compile(rb"(?:^|\n)dkim-signature[ \t]*:", re.I)


def _head(message: bytes) -> bytes:
    return message.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]


async def check_dkim(message: bytes, resolver: Resolver) -> list[DkimResult]:
    loop = asyncio.get_running_loop()
    if not _DKIM_FIELD.search(_head(message)):
        return []  # unsigned (most mail): no thread hand-off, no dkimpy parse of the message
    sigs = await loop.run_in_executor(None, _signatures, message)
    keys: dict[bytes, bytes | None] = {}
    temp: set[bytes] = set()
    for tags in sigs:
        d, s = tags.get(b"d", b""), tags.get(b"s", b"")
        if not d or not s:
            continue
        name = s.lower() + b"._domainkey." + d.lower().rstrip(b".") + b"."
        if name in keys or name in temp:
            continue
        try:
            answers = await resolver.txt(name.decode("ascii", "replace"))
            keys[name] = answers[0] if answers else None
        except NXDomain:
            keys[name] = None
        except DnsTempError:
            temp.add(name)
    verdicts = await loop.run_in_executor(None, _verify, message, len(sigs), keys)
    results = []
    for tags, (result, reason) in zip(sigs, verdicts):
        d = tags.get(b"d", b"").decode("ascii", "replace")
        s = tags.get(b"s", b"").decode("ascii", "replace")
        name = s.lower().encode() + b"._domainkey." + d.lower().rstrip(".").encode() + b"."
        if name in temp:
            result, reason = "temperror", "key look-up failed"
        elif result != "pass" and keys.get(name) is None and d and s:
            result, reason = "permerror", "no key"
        b = re.sub(rb"\s+", b"", tags.get(b"b", b""))[:8].decode("ascii", "replace")
        results.append(DkimResult(result, d, s, b, reason))
    return results


def format_header(authserv_id: str, dkim_results: list[DkimResult], spf: SpfResult | None, mail_from: str, helo: str,
                  dmarc: tuple[str, str] | None = None) -> bytes:
    """``dmarc``: (result, From domain) of smtp.filters.dmarc, added as ``dmarc=... header.from=``."""
    parts = []
    if not dkim_results:
        parts.append("dkim=none")
    for r in dkim_results:
        item = f"dkim={r.result}"
        reason = _SAFE.sub(" ", r.reason.split("(")[0])[:60].strip()
        if reason:
            item += f" ({reason})"
        if r.domain:
            item += f" header.d={_SAFE.sub('', r.domain)} header.s={_SAFE.sub('', r.selector)}"
        if r.b:
            item += f' header.b="{_B64.sub("", r.b)}"'
        parts.append(item)
    if spf is not None:
        if "@" in mail_from:
            parts.append(f"spf={spf.result} smtp.mailfrom={_SAFE_ADDR.sub('', mail_from)}")
        else:
            parts.append(f"spf={spf.result} smtp.helo={_SAFE.sub('', helo)}")
    if dmarc is not None:
        result, domain = dmarc
        parts.append(f"dmarc={result} header.from={_SAFE.sub('', domain)}" if domain else f"dmarc={result}")
    lines = [f"Authentication-Results: {_SAFE.sub('', authserv_id)};"]
    lines += [f"\t{p};" for p in parts[:-1]] + [f"\t{parts[-1]}"]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


async def verify(
    raw: bytes | BinaryIO, client_ip: str, helo: str, mail_from: str, resolver: Resolver
) -> tuple[list[DkimResult], SpfResult]:
    """DKIM results of ``raw`` (the whole message as received, bytes or a seekable binary file,
    read in a thread and rewound) and the SPF result of the client."""
    loop = asyncio.get_running_loop()
    if isinstance(raw, (bytes, bytearray, memoryview)):
        message = bytes(raw)
    else:

        def read() -> bytes:
            raw.seek(0)
            data = raw.read()
            raw.seek(0)
            return data

        message = await loop.run_in_executor(None, read)
    if not _DKIM_FIELD.search(_head(message)):  # unsigned (most mail): SPF alone, no task
        return [], await check_spf(client_ip, mail_from, helo, resolver)
    spf_task = asyncio.ensure_future(check_spf(client_ip, mail_from, helo, resolver))
    try:
        dkim_results = await check_dkim(message, resolver)
    except Exception:  # noqa: BLE001 - unparseable message: record it, deliver anyway
        dkim_results = [DkimResult("permerror", "", "", "", "unparseable message")]
    return dkim_results, await spf_task


async def authentication_results(
    raw: bytes | BinaryIO,
    client_ip: str,
    helo: str,
    mail_from: str,
    resolver: Resolver,
    *,
    authserv_id: str,
) -> bytes:
    """The ``Authentication-Results:`` field (CRLF-terminated) to prepend to ``raw``."""
    dkim_results, spf = await verify(raw, client_ip, helo, mail_from, resolver)
    return format_header(authserv_id, dkim_results, spf, mail_from, helo)
