"""A raw IMAP client that sends exactly the bytes a script gives and reads whole responses
(lines plus any literals they announce) until the command's tag."""

from __future__ import annotations

import re
import socket
import time

LITERAL_AT_END = re.compile(rb"~?\{(\d+)\}$")


class Timeout(Exception):
    pass


class RawClient:
    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.closed = False
        self.greeting = self.read_response()

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout()
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout() from None
        if not chunk:
            self.closed = True
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def read_response(self) -> bytes:
        """One response: a line and, for each literal it announces, the literal and the rest."""
        deadline = time.monotonic() + self.timeout
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill(deadline)
            line, self.buf = self.buf.split(b"\r\n", 1)
            out += line
            m = LITERAL_AT_END.search(line)
            if not m:
                return out
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill(deadline)
            out += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]

    def read_until_tag(self, tag: bytes, stop_at_continuation: bool = False) -> list[bytes]:
        """Responses up to and including the tagged one (or a continuation request, if asked)."""
        got = []
        while True:
            try:
                r = self.read_response()
            except ConnectionError:
                got.append(b"<connection closed>")
                return got
            got.append(r)
            if r.startswith(tag + b" "):
                return got
            if stop_at_continuation and r.startswith(b"+"):
                return got

    def command(self, tag: bytes, chunks: list[bytes], wait_continuation: bool = False) -> list[bytes]:
        """Send a whole command given as chunks: every chunk but the last ends with a
        synchronizing literal's "{N}\\r\\n", after which the server's continuation request is
        awaited. A tagged reply instead ends the command (the literal was refused)."""
        got: list[bytes] = []
        for chunk in chunks[:-1]:
            self.sock.sendall(chunk)
            part = self.read_until_tag(tag, stop_at_continuation=True)
            got.extend(part)
            if not part[-1].startswith(b"+"):
                return got  # refused (tagged NO/BAD) or connection closed
        self.sock.sendall(chunks[-1])
        got.extend(self.read_until_tag(tag, stop_at_continuation=wait_continuation))
        return got

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
