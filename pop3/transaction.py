"""POP3 TRANSACTION state: STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP (RFC 1939).

Differences from Twisted's handlers (docs/libraries.md, Twisted POP3): ``UIDL n`` answers ``+OK n uid``; DELE
checks the range and refuses a message already deleted; RETR/TOP stream the stored body from a
worker thread with back-pressure and stuff dots across chunk boundaries (``pop3_encoder``);
errors are generic ``-ERR`` texts.
"""

from __future__ import annotations

import itertools
import logging

from twisted.internet import defer
from twisted.internet.error import ConnectionDone, ConnectionLost

from pop3 import replies as R
from pop3.encoder import MessageEncoder
from pop3.maildrop import DropMessage
from pop3.stream import BlobSource, Streamer, batches, open_and_read

log = logging.getLogger(__name__)

MAX_NUMBER_DIGITS = 10


def parse_number(word: bytes) -> int | None:
    """A non-negative decimal argument, or None (signs, spaces and huge values refused)."""
    if not word.isdigit() or len(word) > MAX_NUMBER_DIGITS:
        return None
    return int(word)


class TransactionCommands:
    """Mixed into ``POP3Server``; ``self.maildrop`` is set in this state."""

    def cmd_STAT(self, args: bytes) -> None:
        if args.strip():
            self.reply(R.ERR_SYNTAX)
            return
        self.reply(b"+OK %d %d" % self.maildrop.stat())

    def cmd_LIST(self, args: bytes) -> defer.Deferred | None:
        return self._listing(args, lambda n, m: b"%d %d" % (n, m.size))

    def cmd_UIDL(self, args: bytes) -> defer.Deferred | None:
        return self._listing(args, lambda n, m: b"%d %s" % (n, self.maildrop.uidl(m).encode("ascii")))

    def _listing(self, args: bytes, line) -> defer.Deferred | None:
        words = args.split()
        if len(words) > 1:
            self.reply(R.ERR_SYNTAX)
            return None
        if words:
            found = self._message(words[0])
            if found is not None:
                self.reply(b"+OK " + line(*found))
            return None
        count, octets = self.maildrop.stat()
        self.reply(b"+OK %d messages (%d octets)" % (count, octets))
        lines = (line(n, m) + b"\r\n" for n, m in self.maildrop.live())
        source = batches(itertools.chain(lines, [b".\r\n"]))
        return Streamer(self.transport, source, self.resetTimeout).start().addErrback(self._stream_failed)

    def cmd_RETR(self, args: bytes) -> defer.Deferred | None:
        words = args.split()
        if len(words) != 1:
            self.reply(R.ERR_SYNTAX)
            return None
        found = self._message(words[0])
        if found is None:
            return None
        message = found[1]
        return self._send_message(message, b"+OK %d octets" % message.size, None)

    def cmd_TOP(self, args: bytes) -> defer.Deferred | None:
        words = args.split()
        lines = parse_number(words[1]) if len(words) == 2 else None
        if lines is None:
            self.reply(R.ERR_SYNTAX)
            return None
        found = self._message(words[0])
        if found is None:
            return None
        return self._send_message(found[1], b"+OK Top of message follows", lines)

    def cmd_DELE(self, args: bytes) -> None:
        words = args.split()
        if len(words) != 1:
            self.reply(R.ERR_SYNTAX)
            return
        found = self._message(words[0])
        if found is not None:
            self.maildrop.delete(found[0])
            self.reply(b"+OK Message %d deleted" % found[0])

    def cmd_RSET(self, args: bytes) -> None:
        self.maildrop.reset()
        self.reply(R.maildrop_ok(*self.maildrop.stat()))

    def cmd_NOOP(self, args: bytes) -> None:
        self.reply(R.OK)

    # -- helpers ------------------------------------------------------------------------------
    def _message(self, word: bytes) -> tuple[int, DropMessage] | None:
        """Resolve a message-number argument, replying ``-ERR`` when it names no live message."""
        number = parse_number(word)
        if number is None:
            self.reply(R.ERR_SYNTAX)
            return None
        message = self.maildrop.get(number)
        if message is None:
            self.reply(R.ERR_DELETED if self.maildrop.is_deleted(number) else R.ERR_NO_SUCH)
            return None
        return number, message

    def _send_message(self, message: DropMessage, status: bytes, top_lines: int | None) -> defer.Deferred:
        d = self.ctx.run_in_thread(open_and_read, self.ctx.store.messages.open_blob, message.blob)
        d.addCallbacks(self._stream_blob, self._blob_failed, callbackArgs=(status, top_lines))
        return d

    def _stream_blob(self, opened, status: bytes, top_lines: int | None) -> defer.Deferred | None:
        fp, first = opened
        if self._closing:
            fp.close()
            return None
        # The status line goes out with the first chunk (pop3/stream.py BlobSource says why).
        source = BlobSource(fp, MessageEncoder(top_lines), self.ctx.run_in_thread, first=first, prefix=status + b"\r\n")
        d = Streamer(self.transport, source, self.resetTimeout).start()

        def close_source(result):
            source.close()
            return result

        return d.addBoth(close_source).addErrback(self._stream_failed)

    def _blob_failed(self, failure) -> None:
        log.error("pop3 could not open a message body",
                  exc_info=(failure.type, failure.value, failure.getTracebackObject()))
        self.reply(R.store_error(failure.value))

    def _stream_failed(self, failure) -> None:
        """Half a multi-line response is out: no ``-ERR`` can follow it, so hang up."""
        if not failure.check(ConnectionDone, ConnectionLost):
            log.error("pop3 multi-line response failed",
                      exc_info=(failure.type, failure.value, failure.getTracebackObject()))
        self.close()

