"""Sending multi-line POP3 responses with back-pressure.

A ``Streamer`` is a push producer registered on the transport: it asks its source for the next
chunk only while the transport is not paused, so a 30 MB RETR to a slow client holds one chunk in
memory, not the message. Sources return a Deferred of bytes (possibly empty), or of None at the
end; ``BlobSource`` reads the stored body in a worker thread and encodes it on the loop.
"""

from __future__ import annotations

from typing import BinaryIO, Callable, Iterator

from twisted.internet import defer
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.python.failure import Failure
from zope.interface import implementer

from pop3.encoder import MessageEncoder

CHUNK_SIZE = 64 * 1024
#: Runs a blocking callable off the loop: ``threads.deferToThread`` in production.
RunInThread = Callable[..., defer.Deferred]
Source = Callable[[], defer.Deferred]


@implementer(IPushProducer)
class Streamer:
    """Copy a source to a consumer; ``start()`` fires when the source is exhausted."""

    def __init__(self, consumer: IConsumer, source: Source, on_chunk: Callable[[], None] | None = None) -> None:
        self._consumer = consumer
        self._source = source
        self._on_chunk = on_chunk  # e.g. reset the autologout timer: the client is reading
        self._paused = self._reading = self._pumping = self._finished = False
        self._done: defer.Deferred | None = None

    def start(self) -> defer.Deferred:
        self._done = done = defer.Deferred()
        self._consumer.registerProducer(self, True)
        self._pump()
        return done

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._pump()

    def stopProducing(self) -> None:
        self._finish(ConnectionDone("the client went away during a multi-line response"))

    def _pump(self) -> None:
        if self._pumping:
            return  # a source that answers synchronously loops here instead of recursing
        self._pumping = True
        try:
            while not (self._paused or self._reading or self._finished):
                self._reading = True
                self._source().addCallbacks(self._got, self._failed)
        finally:
            self._pumping = False

    def _got(self, chunk: bytes | None) -> None:
        self._reading = False
        if self._finished:
            return
        if chunk is None:
            self._finish(None)
            return
        if chunk:
            try:
                self._consumer.write(chunk)
            except Exception:  # end the response (and the session) rather than hang it
                self._finish(Failure())
                return
            if self._on_chunk is not None:
                self._on_chunk()
        self._pump()

    def _failed(self, failure) -> None:
        self._reading = False
        self._finish(failure)

    def _finish(self, error) -> None:
        if self._finished:
            return
        self._finished = True
        self._consumer.unregisterProducer()
        done, self._done = self._done, None
        if done is not None:
            if error is None:
                done.callback(None)
            else:
                done.errback(error)


def batches(lines: Iterator[bytes], per_chunk: int = 512) -> Source:
    """A source over in-memory lines (LIST/UIDL of a big maildrop), a few hundred per write."""

    def next_chunk() -> defer.Deferred:
        chunk = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= per_chunk:
                break
        return defer.succeed(b"".join(chunk) if chunk else None)

    return next_chunk


def open_and_read(open_blob: Callable[[str], BinaryIO], blob: str) -> tuple[BinaryIO, bytes]:
    """In a worker thread: the stored body opened and its first ``CHUNK_SIZE`` bytes read, in
    one hand-off; a message shorter than that is then sent whole in one write (``BlobSource``)."""
    fp = open_blob(blob)
    try:
        return fp, fp.read(CHUNK_SIZE)
    except BaseException:
        fp.close()
        raise


class BlobSource:
    """The encoded body of one stored message, read in a worker thread chunk by chunk.

    ``first``: the chunk ``open_and_read`` already read, sent with ``prefix`` (the status line)
    as the first write; when it was the whole message (shorter than CHUNK_SIZE, or all that TOP
    wants) the terminator goes in that write too. Why: a response written in pieces, one per
    worker-thread hand-off, sent its small pieces behind the client's delayed ACK of the
    previous one (Nagle's algorithm, ~40 ms per RETR, whatever the size) and cost three
    hand-offs and three sends per message; TCP_NODELAY (pop3/server.py) removes the wait, this
    the extra round trips through the thread pool.

    The file is closed once, on the loop thread, and never while a worker thread reads it.
    """

    def __init__(self, fp: BinaryIO, encoder: MessageEncoder, run_in_thread: RunInThread, *,
                 first: bytes | None = None, prefix: bytes = b"") -> None:
        self._fp = fp
        self._encoder = encoder
        self._run = run_in_thread
        self._first = first
        self._prefix = prefix
        self._reading = False
        self._closed = False

    def __call__(self) -> defer.Deferred:
        if self._closed:
            return defer.succeed(None)
        if self._first is not None:
            raw, self._first = self._first, None
            out = self._prefix + self._encoder.feed(raw)
            if len(raw) < CHUNK_SIZE or self._encoder.done:
                out += self._end()
            return defer.succeed(out)
        if self._encoder.done:  # TOP has its lines: stop reading the blob
            return defer.succeed(self._end())
        self._reading = True
        d = self._run(self._fp.read, CHUNK_SIZE)
        d.addBoth(self._read_done)
        return d.addCallback(self._encode)

    def _read_done(self, result):
        self._reading = False
        if self._closed:  # close() came during the read: do it now
            self._fp.close()
        return result

    def _encode(self, raw: bytes) -> bytes | None:
        if self._closed:
            return None
        if not raw:
            return self._end()
        return self._encoder.feed(raw)

    def _end(self) -> bytes:
        self.close()
        return self._encoder.finish()

    def close(self) -> None:
        """Idempotent; safe while a read is in flight (the file closes when it returns)."""
        if self._closed:
            return
        self._closed = True
        if not self._reading:
            self._fp.close()
