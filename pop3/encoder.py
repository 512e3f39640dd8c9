"""POP3 multi-line message encoding (RFC 1939 section 3), fed chunk by chunk.

Twisted's ``POP3.transformChunk`` turns stored CRLF into ``\\r\\r\\n`` and dot-stuffs each 16 KiB
chunk on its own, so a line starting with "." on line 1 or at a chunk boundary goes out unstuffed
(a lone "." there ends the message early). This encoder keeps its state across chunks:

- line ends become CRLF (stored CRLF kept, bare LF widened; a bare CR is left as it is);
- every line starting with "." gets one more ".", the first line included;
- ``top_lines`` (TOP) passes the header, the blank line and that many body lines, then reports
  ``done`` so the caller stops reading the blob;
- ``finish()`` adds the CRLF a body without a final line end needs, and the terminating ".".

Work is done with ``bytes.replace``/``find`` on whole chunks (no per-byte Python loop), so a 30 MB
message costs a few milliseconds of loop time per MB.
"""

from __future__ import annotations

TERMINATOR = b".\r\n"


class MessageEncoder:
    """Turn stored message bytes into the body of a RETR/TOP response."""

    def __init__(self, top_lines: int | None = None) -> None:
        self._held_cr = False  # a chunk ended in CR: its LF may start the next chunk
        self._at_line_start = True  # of the output: the next byte begins a line
        self._in_header = top_lines is not None
        self._lines_left = top_lines  # body lines TOP still sends; None = all (RETR)
        self.done = False  # nothing more will be sent: the caller may stop reading

    def feed(self, chunk: bytes) -> bytes:
        """Encode the next chunk of the stored message; returns the bytes to send."""
        if self.done or not chunk:
            return b""
        if self._held_cr:
            chunk = b"\r" + chunk
            self._held_cr = False
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
            self._held_cr = True
        return self._emit(_normalise(chunk))

    def finish(self) -> bytes:
        """The end of the response: pending bytes, a final CRLF when needed, and ".\\r\\n"."""
        tail = b""
        if self._held_cr and not self.done:
            # A bare CR ends the message; keep it, then close the line.
            tail = self._emit(b"\r")
        self._held_cr = False
        self.done = True
        if not self._at_line_start:
            tail += b"\r\n"
        return tail + TERMINATOR

    def _emit(self, text: bytes) -> bytes:
        if self._lines_left is not None:
            text = self._limit(text)
        if not text:
            return b""
        out = text.replace(b"\n.", b"\n..")
        if self._at_line_start and out.startswith(b"."):
            out = b"." + out
        self._at_line_start = out.endswith(b"\n")
        return out

    def _limit(self, text: bytes) -> bytes:
        """Cut ``text`` (normalised) where TOP's header plus n body lines end."""
        start = 0
        if self._in_header:
            if self._at_line_start and text.startswith(b"\r\n"):
                end = 2
            else:
                found = text.find(b"\n\r\n")
                if found < 0:
                    return text
                end = found + 3
            self._in_header = False
            start = end
        pos = start
        while self._lines_left > 0:
            newline = text.find(b"\n", pos)
            if newline < 0:
                return text
            pos = newline + 1
            self._lines_left -= 1
        self.done = True
        return text[:pos]


def _normalise(text: bytes) -> bytes:
    """CRLF and bare LF → CRLF; bare CR untouched (the caller never splits a CRLF)."""
    if b"\n" not in text:
        return text
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
