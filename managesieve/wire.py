"""The ManageSieve wire format (RFC 5804 section 4): reading a command line with its quoted
strings and literals, and quoting strings in responses. Bounded: a line longer than
``MAX_LINE`` or a literal over the caller's limit is a protocol error, never a large buffer."""

from __future__ import annotations

import asyncio
import re

MAX_LINE = 8192


class WireError(Exception):
    """The client sent something we cannot read; the message is for the client."""


class TooBig(WireError):
    pass


_TOKEN = re.compile(rb'\s*(?:"((?:[^"\\\r\n]|\\.)*)"|\{(\d{1,9})(\+?)\}$|([^\s"{}()]+))')


async def read_command(reader: asyncio.StreamReader, max_literal: int) -> list[str | bytes] | None:
    """One command as [verb, arg, ...]: quoted strings as str, literals as bytes. None at EOF."""
    words: list[str | bytes] = []
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as e:
            if not e.partial and not words:
                return None
            raise WireError("connection closed inside a command") from None
        except asyncio.LimitOverrunError:
            raise WireError("line too long") from None
        if len(line) > MAX_LINE:
            raise WireError("line too long")
        line = line.rstrip(b"\r\n")
        pos, literal = 0, None
        while pos < len(line):
            m = _TOKEN.match(line, pos)
            if m is None:
                if line[pos:].strip():
                    raise WireError("syntax error")
                break
            pos = m.end()
            if m.group(1) is not None:
                words.append(re.sub(rb"\\(.)", rb"\1", m.group(1)).decode("utf-8", "strict"))
            elif m.group(2) is not None:
                literal = int(m.group(2))
            else:
                words.append(m.group(4).decode("ascii", "replace"))
        if literal is None:
            return words
        if literal > max_literal:
            raise TooBig(f"literal of {literal} octets, at most {max_literal}")
        try:
            words.append(await reader.readexactly(literal))
        except asyncio.IncompleteReadError:
            raise WireError("connection closed inside a literal") from None


def quote(text: str) -> bytes:
    """A string as a quoted string, or a literal when it has line breaks or is long."""
    data = text.encode("utf-8")
    if b"\r" in data or b"\n" in data or len(data) > 1000:
        return b"{%d}\r\n" % len(data) + data
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
