"""Unit tests of POP3 message encoding and streaming: no server, no sockets."""

from __future__ import annotations

import io
import random

import pytest
from twisted.internet import defer
from twisted.internet.error import ConnectionDone

from pop3.encoder import MessageEncoder
from pop3.stream import BlobSource, Streamer, batches


def reference(message: bytes, top: int | None = None) -> bytes:
    """RFC 1939 encoding computed on the whole message, line by line (the slow, obvious way)."""
    text = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    *complete, last = text.split(b"\r\n")
    lines = complete + ([last] if last else [])
    if top is not None and b"" in lines:
        lines = lines[: lines.index(b"") + 1 + top]
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines) + b".\r\n"


def encode(message: bytes, cuts: list[int], top: int | None = None) -> bytes:
    """Feed ``message`` split at ``cuts``; stop feeding once the encoder says it is done."""
    encoder = MessageEncoder(top)
    out = []
    bounds = [0, *cuts, len(message)]
    for start, end in zip(bounds, bounds[1:]):
        if encoder.done:
            break
        out.append(encoder.feed(message[start:end]))
    out.append(encoder.finish())
    return b"".join(out)


def test_line_one_starting_with_dot_is_stuffed():
    assert encode(b".hidden\r\nbody\r\n", []) == b"..hidden\r\nbody\r\n.\r\n"


def test_lone_dot_line_at_chunk_boundary_is_stuffed():
    message = b"Subject: x\r\n\r\nabc\r\n.\r\nstill the body\r\n"
    cut = message.index(b".\r\nstill")
    assert encode(message, [cut]) == b"Subject: x\r\n\r\nabc\r\n..\r\nstill the body\r\n.\r\n"


def test_crlf_split_between_chunks_is_not_doubled():
    message = b"a\r\n.b\r\n"
    assert encode(message, [2]) == b"a\r\n..b\r\n.\r\n"  # CR ends chunk 1, LF starts chunk 2


def test_stored_crlf_is_kept_and_bare_lf_widened():
    assert encode(b"a\r\nb\nc\r\n", []) == b"a\r\nb\r\nc\r\n.\r\n"


def test_body_without_final_line_end_gets_crlf_before_terminator():
    assert encode(b"Subject: x\r\n\r\nno newline", [5]) == b"Subject: x\r\n\r\nno newline\r\n.\r\n"


def test_eight_bit_bytes_pass_unchanged():
    message = "Subject: Công văn số 12\r\n\r\nNội dung.\r\n".encode()
    assert encode(message, [7, 8, 9]) == message + b".\r\n"


def test_top_zero_sends_header_and_blank_line_only():
    message = b"A: 1\r\nB: 2\r\n\r\nline1\r\nline2\r\n"
    assert encode(message, [], top=0) == b"A: 1\r\nB: 2\r\n\r\n.\r\n"


def test_top_counts_body_lines_across_chunks_and_stops_reading():
    message = b"A: 1\r\n\r\n.one\r\ntwo\r\nthree\r\n" + b"x" * 100_000
    encoder = MessageEncoder(2)
    out = encoder.feed(message[:9]) + encoder.feed(message[9:20])
    assert encoder.done
    assert out + encoder.finish() == b"A: 1\r\n\r\n..one\r\ntwo\r\n.\r\n"


def test_top_blank_line_split_across_chunks():
    message = b"A: 1\r\n\r\nbody\r\nmore\r\n"
    for cut in range(1, len(message)):
        assert encode(message, [cut], top=1) == b"A: 1\r\n\r\nbody\r\n.\r\n", cut


def test_top_on_message_without_body_sends_everything():
    assert encode(b"A: 1\r\nB: 2", [], top=3) == b"A: 1\r\nB: 2\r\n.\r\n"


@pytest.mark.parametrize("top", [None, 0, 1, 3])
def test_every_split_point_matches_whole_message_encoding(top):
    message = b".A: 1\r\nB:\n\r\n.\r\n..x\r\r\n\n.\r.y\r\n."
    expected = reference(message, top)
    for i in range(len(message) + 1):
        for j in range(i, len(message) + 1):
            assert encode(message, [i, j], top) == expected, (i, j)


@pytest.mark.parametrize("seed", range(40))
def test_random_messages_and_chunkings_match_reference(seed):
    rng = random.Random(seed)
    alphabet = [b"a", b".", b"\r", b"\n", b"\r\n", b"\xc3\xa2", b" "]
    message = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 300)))
    cuts = sorted(rng.randrange(0, len(message) + 1) for _ in range(rng.randrange(0, 12)))
    top = rng.choice([None, 0, 1, 2, 5])
    assert encode(message, cuts, top) == reference(message, top)


class FakeConsumer:
    """An IConsumer that pauses its producer after each write, like a full socket buffer."""

    def __init__(self, pause_after_write: bool) -> None:
        self.data = []
        self.producer = None
        self.pause_after_write = pause_after_write
        self.unregistered = False

    def registerProducer(self, producer, streaming):
        assert streaming and self.producer is None
        self.producer = producer

    def unregisterProducer(self):
        self.unregistered = True
        self.producer = None

    def write(self, data):
        self.data.append(data)
        if self.pause_after_write:
            self.producer.pauseProducing()


def sync_thread(f, *args):
    return defer.maybeDeferred(f, *args)


class TrackingFile(io.BytesIO):
    reads = 0

    def read(self, size=-1):
        self.reads += 1
        return super().read(size)


def test_streamer_reads_nothing_more_while_paused():
    blob = TrackingFile(b"x" * (5 * 64 * 1024))
    consumer = FakeConsumer(pause_after_write=True)
    done = Streamer(consumer, BlobSource(blob, MessageEncoder(), sync_thread)).start()
    assert blob.reads == 1 and len(consumer.data) == 1 and not done.called
    consumer.producer.resumeProducing()
    assert blob.reads == 2 and len(consumer.data) == 2
    while not done.called:
        consumer.producer.resumeProducing()
    assert b"".join(consumer.data) == b"x" * (5 * 64 * 1024) + b"\r\n.\r\n"
    assert blob.closed and consumer.unregistered


def test_streamer_stop_fails_done_and_source_closes_file():
    blob = TrackingFile(b"y" * (3 * 64 * 1024))
    source = BlobSource(blob, MessageEncoder(), sync_thread)
    consumer = FakeConsumer(pause_after_write=True)
    done = Streamer(consumer, source).start()
    failures = []
    done.addErrback(lambda f: failures.append(f.check(ConnectionDone)))
    consumer.producer.stopProducing()
    source.close()
    assert failures == [ConnectionDone] and blob.closed


def test_blob_source_closes_after_an_in_flight_read_returns():
    pending = []

    def deferred_thread(f, *args):
        d = defer.Deferred()
        pending.append((d, f, args))
        return d

    blob = TrackingFile(b"body\r\n")
    source = BlobSource(blob, MessageEncoder(), deferred_thread)
    result = source()
    source.close()
    assert not blob.closed  # the worker thread is still reading it
    d, f, args = pending.pop()
    d.callback(f(*args))
    assert blob.closed and result.result is None


def test_batches_source_streams_lines_then_ends():
    consumer = FakeConsumer(pause_after_write=False)
    lines = iter([b"%d\r\n" % i for i in range(1000)])
    done = Streamer(consumer, batches(lines, per_chunk=100)).start()
    assert done.called and len(consumer.data) == 10
    assert b"".join(consumer.data) == b"".join(b"%d\r\n" % i for i in range(1000))


def test_streamer_fails_instead_of_hanging_when_a_write_raises():
    class BrokenConsumer(FakeConsumer):
        def write(self, data):
            raise OSError("socket gone")

    consumer = BrokenConsumer(pause_after_write=False)
    done = Streamer(consumer, batches(iter([b"1 10\r\n"]))).start()
    failures = []
    done.addErrback(lambda f: failures.append(f.check(OSError)))
    assert failures == [OSError] and consumer.unregistered


def test_a_message_read_whole_with_its_open_goes_out_in_one_write_with_its_status():
    """One write per short RETR: split over hand-offs, its small pieces waited on Nagle's
    algorithm for the client's delayed ACK (~40 ms a message)."""
    from pop3.stream import open_and_read

    fp, first = open_and_read(lambda sha: TrackingFile(b".dot\r\nbody\r\n"), "sha")
    consumer = FakeConsumer(pause_after_write=False)
    source = BlobSource(fp, MessageEncoder(), sync_thread, first=first, prefix=b"+OK 12 octets\r\n")
    done = Streamer(consumer, source).start()
    assert done.called and fp.closed and fp.reads == 1
    assert consumer.data == [b"+OK 12 octets\r\n..dot\r\nbody\r\n.\r\n"]


def test_a_message_longer_than_the_first_chunk_streams_the_rest_after_the_status():
    from pop3.stream import CHUNK_SIZE, open_and_read

    body = b"z" * (CHUNK_SIZE + 10)
    fp, first = open_and_read(lambda sha: TrackingFile(body), "sha")
    consumer = FakeConsumer(pause_after_write=False)
    done = Streamer(consumer, BlobSource(fp, MessageEncoder(), sync_thread, first=first, prefix=b"+OK\r\n")).start()
    assert done.called and fp.closed
    assert consumer.data[0].startswith(b"+OK\r\nzzz") and len(consumer.data) > 1
    assert b"".join(consumer.data) == b"+OK\r\n" + body + b"\r\n.\r\n"


def test_top_stops_at_the_first_chunk_when_it_has_its_lines():
    from pop3.stream import open_and_read

    fp, first = open_and_read(lambda sha: TrackingFile(b"A: 1\r\n\r\none\r\ntwo\r\n"), "sha")
    consumer = FakeConsumer(pause_after_write=False)
    Streamer(consumer, BlobSource(fp, MessageEncoder(1), sync_thread, first=first, prefix=b"+OK\r\n")).start()
    assert consumer.data == [b"+OK\r\nA: 1\r\n\r\none\r\n.\r\n"] and fp.closed
