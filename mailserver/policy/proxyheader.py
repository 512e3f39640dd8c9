"""HAProxy's PROXY protocol header, versions 1 (text) and 2 (binary): the real client address of
a connection that came through a proxy (haproxy.org/download/2.8/doc/proxy-protocol.txt).

Pure: ``parse`` takes the bytes received so far and says whether the header is complete. Used by
the SMTP front end (asyncio) and the Twisted listeners (IMAP, POP3) alike, only on connections
from ``proxy.trusted`` networks: anyone else could claim any address.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX = 107  # the longest v1 line, CRLF included (section 2.1)


class BadHeader(ValueError):
    """Not a PROXY header: the connection is closed."""


@dataclass(frozen=True, slots=True)
class Header:
    """``client``: (address, port), or None for a proxy's own connection (v2 LOCAL, v1 UNKNOWN):
    the connection's peer then stands. ``rest``: the bytes after the header."""

    client: tuple[str, int] | None
    rest: bytes


def parse(data: bytes) -> Header | None:
    """The header at the start of ``data``; None while more bytes are needed."""
    if data[: len(V2_SIGNATURE)] == V2_SIGNATURE[: len(data)] and len(data) < 16:
        return None  # possibly v2, too short to tell
    if data.startswith(V2_SIGNATURE):
        return _v2(data)
    if b"PROXY "[: len(data)] == data[:6]:
        return _v1(data)
    raise BadHeader("no PROXY header")


def _address(text: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise BadHeader(f"bad address {text!r}") from None
    if address.version != version:
        raise BadHeader(f"address {text!r} is not IPv{version}")
    return str(address)


def _port(text: bytes) -> int:
    if not text.isdigit() or len(text) > 5 or int(text) > 65535 or (len(text) > 1 and text[:1] == b"0"):
        raise BadHeader(f"bad port {text!r}")
    return int(text)


def _v1(data: bytes) -> Header | None:
    end = data.find(b"\r\n")
    if end < 0:
        if len(data) >= V1_MAX:
            raise BadHeader("PROXY v1 line too long")
        return None
    if end + 2 > V1_MAX:
        raise BadHeader("PROXY v1 line too long")
    words, rest = data[:end].split(b" "), data[end + 2 :]
    if len(words) >= 2 and words[1] == b"UNKNOWN":
        return Header(None, rest)
    if len(words) != 6 or words[1] not in (b"TCP4", b"TCP6"):
        raise BadHeader("malformed PROXY v1 line")
    version = 4 if words[1] == b"TCP4" else 6
    source = _address(words[2].decode("ascii", "replace"), version)
    _address(words[3].decode("ascii", "replace"), version)
    port = _port(words[4])
    _port(words[5])
    return Header((source, port), rest)


def _v2(data: bytes) -> Header | None:
    version_command, family, length = data[12], data[13], struct.unpack("!H", data[14:16])[0]
    if version_command >> 4 != 2 or version_command & 0x0F not in (0, 1):
        raise BadHeader("bad PROXY v2 version or command")
    if len(data) < 16 + length:
        return None
    body, rest = data[16 : 16 + length], data[16 + length :]
    if version_command & 0x0F == 0:  # LOCAL: the proxy's own connection (health checks)
        return Header(None, rest)
    if family == 0x11:  # TCP over IPv4
        if length < 12:
            raise BadHeader("short PROXY v2 IPv4 block")
        source = str(ipaddress.IPv4Address(body[0:4]))
        port = struct.unpack("!H", body[8:10])[0]
    elif family == 0x21:  # TCP over IPv6
        if length < 36:
            raise BadHeader("short PROXY v2 IPv6 block")
        source = str(ipaddress.IPv6Address(body[0:16]))
        port = struct.unpack("!H", body[32:34])[0]
    elif family == 0x00:  # UNSPEC
        return Header(None, rest)
    else:
        raise BadHeader(f"unsupported PROXY v2 family {family:#x}")
    return Header((source, port), rest)
