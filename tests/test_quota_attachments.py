"""Attachment measurement (R-QUOTA-1): decoded bytes, exact boundaries, streaming, broken MIME."""

from __future__ import annotations

import base64
import binascii
import io
import random
import tracemalloc

import pytest

from quota.attachments import AttachmentMeasure
from quota.attachments import measure_attachments as measure_tree
from quota.decide import PROFILE_DEFAULTS, decide_attachments
from storage.mime import parse
from storage.mime.decoded import Base64Counter, QuotedPrintableCounter

pytestmark = pytest.mark.requirement("R-QUOTA-1")


def measure_attachments(source, max_depth: int | None = None) -> AttachmentMeasure:
    """What SMTP does: the one parse of the message, its part tree measured by quota."""
    options = {} if max_depth is None else {"max_depth": max_depth}
    return measure_tree(parse(source, measure=True, search_text=False, **options)["structure"])

MiB = 1024**2
LIMIT = 20 * MiB  # R-QUOTA-1
BOUNDARY = b"=_Part_0001"  # "=_" cannot occur in base64 or quoted-printable output
LETTER = "Kính gửi các đơn vị,\r\nVăn phòng xin gửi kèm báo cáo.\r\n-- \r\nVăn phòng UBND\r\n"


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def qp(data: bytes) -> bytes:
    return binascii.b2a_qp(data, istext=False).replace(b"\n", b"\r\n")


def part(headers: list[str], body: bytes) -> bytes:
    return "".join(h + "\r\n" for h in headers).encode() + b"\r\n" + body


def text_part(text: str = LETTER) -> bytes:
    return part(["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"], text.encode())


def attachment(data: bytes, encoding: str = "base64", name: str = "bao-cao.pdf") -> bytes:
    body = {"base64": b64, "quoted-printable": qp}.get(encoding, lambda d: d)(data)
    return part(
        [
            f'Content-Type: application/octet-stream; name="{name}"',
            f'Content-Disposition: attachment; filename="{name}"',
            f"Content-Transfer-Encoding: {encoding}",
        ],
        body,
    )


def multipart(parts: list[bytes], boundary: bytes = BOUNDARY, subtype: str = "mixed",
              close: bool = True, headers: list[str] | None = None) -> bytes:
    head = (headers or ["From: annv@molisa.gov.vn", "Subject: =?utf-8?b?QsOhbyBjw6Fv?="]) + [
        "MIME-Version: 1.0",
        f'Content-Type: multipart/{subtype}; boundary="{boundary.decode()}"',
    ]
    out = "".join(h + "\r\n" for h in head).encode() + b"\r\nThis is a MIME message.\r\n"
    for p in parts:
        out += b"--" + boundary + b"\r\n" + p + b"\r\n"
    if close:
        out += b"--" + boundary + b"--\r\n"
    return out


def vietnamese_text(n: int) -> bytes:
    line = "Báo cáo tình hình sử dụng thư điện tử công vụ quý III năm 2026 — Sở TT&TT.\r\n".encode()
    return (line * (n // len(line) + 1))[:n]


@pytest.mark.parametrize("size", [LIMIT - 1, LIMIT + 1])
@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
def test_r_quota_1_attachment_boundary(size: int, encoding: str) -> None:
    """R-QUOTA-1: 20 MiB − 1 and 20 MiB + 1 decoded bytes are measured exactly and decided."""
    data = random.Random(size).randbytes(size) if encoding == "base64" else vietnamese_text(size)
    raw = multipart([text_part(), attachment(data, encoding)])
    measure = measure_attachments(raw)
    assert measure.total_decoded_bytes == size
    assert measure.parts == [("bao-cao.pdf", size)]
    assert not measure.broken
    assert decide_attachments(measure.total_decoded_bytes, PROFILE_DEFAULTS["lamdong"]).ok is (size <= LIMIT)


def test_r_quota_1_several_attachments_add_up() -> None:
    """Three attachments in three encodings: their decoded sizes add up; 20 MiB fits, +1 not."""
    rng = random.Random(3)
    sizes = [7 * MiB, 7 * MiB, 6 * MiB]
    parts = [
        attachment(rng.randbytes(sizes[0]), "base64", "a.pdf"),
        attachment(vietnamese_text(sizes[1]), "quoted-printable", "b.txt"),
        attachment(rng.randbytes(sizes[2]), "binary", "c.bin"),
    ]
    exact = measure_attachments(multipart([text_part(), *parts]))
    assert exact.parts == [("a.pdf", sizes[0]), ("b.txt", sizes[1]), ("c.bin", sizes[2])]
    assert exact.total_decoded_bytes == LIMIT
    assert decide_attachments(exact.total_decoded_bytes, PROFILE_DEFAULTS["lamdong"]).ok
    one_more = measure_attachments(multipart([text_part(), *parts, attachment(b"x", "base64", "d")]))
    assert one_more.total_decoded_bytes == LIMIT + 1
    assert not decide_attachments(one_more.total_decoded_bytes, PROFILE_DEFAULTS["lamdong"]).ok


def test_r_quota_1_letter_bodies_are_not_attachments() -> None:
    """Text and HTML bodies are the letter; inline images, named text and forwarded mail count."""
    html = part(["Content-Type: text/html; charset=utf-8"], b"<p>K\xc3\xadnh g\xe1\xbb\xadi</p>")
    image = part(["Content-Type: image/png", "Content-ID: <logo>", "Content-Transfer-Encoding: base64"],
                 b64(b"\x89PNG" + b"\0" * 996))
    related = multipart([html, image], boundary=b"=_rel", subtype="related", headers=[])
    alternative = multipart([text_part(), related], boundary=b"=_alt", subtype="alternative", headers=[])
    named_text = part(['Content-Type: text/plain; name="ghi-chu.txt"'], b"12345")
    forwarded = part(["Content-Type: message/rfc822"], b"From: x@y\r\nSubject: t\r\n\r\nhello")
    measure = measure_attachments(multipart([alternative, named_text, forwarded]))
    assert measure.parts == [(None, 1000), ("ghi-chu.txt", 5), (None, 30)]
    assert measure.total_decoded_bytes == 1035
    assert not measure.broken


def test_r_quota_1_plain_letter_has_no_attachments() -> None:
    """A message without MIME structure carries no attachment."""
    raw = b"From: a@b\r\nSubject: hi\r\n\r\n" + LETTER.encode() * 1000
    assert measure_attachments(raw).total_decoded_bytes == 0


def test_r_quota_1_single_part_message_that_is_a_file() -> None:
    """A message whose only body is a PDF counts as one attachment."""
    raw = part(["From: a@b", "Content-Type: application/pdf", "Content-Transfer-Encoding: base64"],
               b64(b"%PDF" * 1000))
    assert measure_attachments(raw).parts == [(None, 4000)]


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Content-Disposition: attachment; filename*=utf-8''B%C3%A1o%20c%C3%A1o%20qu%C3%BD%203.pdf",
         "Báo cáo quý 3.pdf"),
        ('Content-Type: application/pdf; name="=?utf-8?b?QsOhbyBjw6FvLnBkZg==?="', "Báo cáo.pdf"),
        ('Content-Disposition: attachment; filename="Tờ trình.docx"', "Tờ trình.docx"),
        ("Content-Disposition: attachment; filename*0*=utf-8''%C4%90%E1%BB%81; filename*1=.pdf",
         "Đề.pdf"),
    ],
)
def test_attachment_file_names_are_decoded(header: str, name: str) -> None:
    """RFC 2231, RFC 2047 and raw UTF-8 (RFC 6532) file names come out as Unicode."""
    raw = multipart([text_part(), part([header, "Content-Transfer-Encoding: base64"], b64(b"abc"))])
    assert measure_attachments(raw).parts == [(name, 3)]


def test_empty_attachment_counts_zero() -> None:
    """An attachment part with no body at all is listed with 0 bytes."""
    empty = b'Content-Type: application/pdf; name="rong.pdf"\r\n'  # boundary follows the header
    assert measure_attachments(multipart([empty, text_part()])).parts == [("rong.pdf", 0)]


def test_lf_only_message_is_measured() -> None:
    """Messages stored with bare LF line ends (from files, tests) are measured too."""
    raw = multipart([text_part(), attachment(b"x" * 5000)]).replace(b"\r\n", b"\n")
    measure = measure_attachments(raw)
    assert measure.total_decoded_bytes == 5000 and not measure.broken


class Trickle(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read: block edges land everywhere."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.pos = data, step, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        chunk = self.data[self.pos : self.pos + min(self.step, n if n >= 0 else self.step)]
        self.pos += len(chunk)
        return chunk


@pytest.mark.parametrize("step", [2, 3, 7, 61, 1000])
def test_streaming_reads_give_the_same_measure(step: int) -> None:
    """Reads of any size (splitting CRLF--, =XY escapes, base64 quads) give the same result."""
    rng = random.Random(step)
    qp_data = vietnamese_text(9_000) + b"=\r\n\r\n"
    raw = multipart([
        text_part(LETTER + "\r\n--\r\n--=_Part_0001x\r\n"),  # dash lines that are not delimiters
        attachment(rng.randbytes(20_000), "base64", "a"),
        attachment(qp_data, "quoted-printable", "b"),
        attachment(rng.randbytes(3_000), "8bit", "c"),
    ])
    expected = measure_attachments(raw)
    assert expected.parts == [("a", 20_000), ("b", len(qp_data)), ("c", 3_000)]
    assert not expected.broken
    assert measure_attachments(Trickle(raw, step)) == expected  # type: ignore[arg-type]


class LazyBase64Message(io.RawIOBase):
    """A ~28 MB message produced while it is read, so only the measurer's memory is traced."""

    BLOCK = random.Random(1).randbytes(57 * 1024)  # 57 bytes = one 76-character base64 line

    def __init__(self, blocks: int) -> None:
        self.head = multipart([text_part()], close=False) + b"--" + BOUNDARY + b"\r\n" + (
            b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n")
        self.encoded = b64(self.BLOCK)
        self.left = blocks
        self.pending = self.head

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if not self.pending:
            if self.left == 0:
                return b""
            self.left -= 1
            self.pending = self.encoded if self.left else self.encoded + b"--" + BOUNDARY + b"--\r\n"
        chunk, self.pending = self.pending[:n], self.pending[n:]
        return chunk


def test_r_quota_1_measures_without_holding_the_message() -> None:
    """A 20 MiB attachment (~27 MB encoded) is measured with a few hundred KB of memory."""
    blocks = LIMIT // len(LazyBase64Message.BLOCK) + 1
    stream = LazyBase64Message(blocks)
    tracemalloc.start()
    try:
        measure = measure_attachments(stream)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert measure.total_decoded_bytes == blocks * len(LazyBase64Message.BLOCK) > LIMIT
    assert peak < 3 * MiB


def test_broken_missing_close_delimiter_is_measured() -> None:
    """No closing delimiter: the attachment is still measured, the message flagged broken."""
    raw = multipart([text_part(), attachment(b"y" * 3000)], close=False)
    measure = measure_attachments(raw)
    assert measure.broken
    assert measure.parts[0] == ("bao-cao.pdf", 3000)


def test_broken_truncated_attachment_counts_what_arrived() -> None:
    """A message cut inside a base64 attachment counts the decoded bytes that arrived."""
    raw = multipart([text_part(), attachment(b"z" * 30_000)])
    cut = raw[: raw.index(b"--" + BOUNDARY + b"--") - 10_000]
    measure = measure_attachments(cut)
    assert measure.broken
    assert 20_000 - 200 < measure.total_decoded_bytes < 30_000


def test_broken_truncated_text_counts_the_rest_as_attachment() -> None:
    """A letter cut off by the end of the message is counted raw: the rest counts."""
    raw = multipart([text_part("a" * 5000)], close=False)
    measure = measure_attachments(raw)
    assert measure.broken and measure.total_decoded_bytes >= 5000


def test_broken_multipart_without_boundary_counts_rest_raw() -> None:
    """multipart/* without a boundary parameter: its whole body counts as attachment bytes."""
    body = b"--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n--x--\r\n"
    raw = b"Content-Type: multipart/mixed\r\n\r\n" + body
    measure = measure_attachments(raw)
    assert measure.broken and measure.total_decoded_bytes == len(body)


def test_broken_parent_boundary_ends_unclosed_child() -> None:
    """A nested multipart never closed: the parent's delimiter ends it, parts still counted."""
    inner = multipart([attachment(b"q" * 100, name="in")], boundary=b"=_in", close=False, headers=[])
    raw = multipart([inner, attachment(b"r" * 50, name="out")])
    measure = measure_attachments(raw)
    assert measure.broken
    assert measure.parts == [("in", 100), ("out", 50)]


def test_broken_bad_base64_tail_is_flagged() -> None:
    """A base64 body with a dangling single character is measured and flagged."""
    raw = multipart([part(["Content-Type: application/pdf", "Content-Transfer-Encoding: base64"],
                          b"QUJD\r\nR")])
    measure = measure_attachments(raw)
    assert measure.broken and measure.total_decoded_bytes == 3


def test_broken_missing_blank_line_after_header() -> None:
    """A part whose header runs into the body without a blank line is still measured."""
    raw = multipart([b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: 8bit\r\n%PDF-1.4 data"])
    measure = measure_attachments(raw)
    assert measure.broken and measure.total_decoded_bytes == len(b"%PDF-1.4 data")


def test_broken_deep_nesting_does_not_recurse_forever() -> None:
    """Hundreds of nested multiparts stop at a depth limit instead of exhausting the stack."""
    raw = b"x"
    for depth in range(300):
        raw = multipart([raw], boundary=f"=_d{depth}".encode(), headers=[])
    measure = measure_attachments(raw)
    assert measure.broken and measure.total_decoded_bytes > 0


def test_broken_oversized_header_counts_rest_raw() -> None:
    """A header section above 256 KiB is not parsed; the part counts raw."""
    huge = b"X-Junk: " + b"a" * 300_000 + b"\r\n"
    raw = multipart([huge + b"Content-Type: text/plain\r\n\r\nhi"])
    measure = measure_attachments(raw)
    assert measure.broken and measure.total_decoded_bytes >= 300_000


@pytest.mark.parametrize("seed", range(150))
def test_broken_mime_never_raises(seed: int) -> None:
    """Random damage to a real message (cuts, inserted bytes, flipped bytes) never raises."""
    rng = random.Random(seed)
    raw = bytearray(multipart([
        text_part(),
        multipart([attachment(rng.randbytes(2000), "base64", "a"), text_part()],
                  boundary=b"=_in", headers=[]),
        attachment(vietnamese_text(1500), "quoted-printable", "b"),
    ]))
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(len(raw))
        action = rng.choice(["cut", "insert", "flip", "delete"])
        if action == "cut":
            del raw[i:]
        elif action == "insert":
            raw[i:i] = rng.choice([b"\r\n", b"--=_in\r\n", b"--=_Part_0001--", b"=", b"\0", rng.randbytes(8)])
        elif action == "flip":
            raw[i] = rng.randrange(256)
        else:
            del raw[i : i + rng.randint(1, 40)]
        if not raw:
            raw = bytearray(b"\r\n")
    measure = measure_attachments(bytes(raw))
    assert measure.total_decoded_bytes >= 0
    assert measure.total_decoded_bytes == sum(size for _, size in measure.parts)


@pytest.mark.parametrize(
    ("encoded", "decoded", "broken"),
    [
        (b"QUJD", 3, False),
        (b"QUI=", 2, False),
        (b"QQ==", 1, False),
        (b"QQ==QUJD", 4, False),  # two concatenated segments
        (b"QU JD\r\n!!", 3, False),  # characters outside the alphabet are skipped
        (b"QUJDR", 3, True),  # a dangling sixth bit group
        (b"QUJDRA", 4, False),  # unpadded end
    ],
)
def test_base64_counter(encoded: bytes, decoded: int, broken: bool) -> None:
    """The base64 counter's decoded size, fed one byte at a time."""
    counter = Base64Counter()
    for i in range(len(encoded)):
        counter.feed(encoded[i : i + 1])
    counter.close()
    assert (counter.decoded, counter.broken, counter.raw) == (decoded, broken, len(encoded))


@pytest.mark.parametrize("step", [1, 2, 5, 100])
def test_quoted_printable_counter_survives_any_split(step: int) -> None:
    """Soft breaks and =XY escapes split across chunks decode to the same size."""
    encoded = b"Ba=CC=81o ca=CC=81o=\r\nqu=C3=BD 3\r\n=3D=\r\n"
    counter = QuotedPrintableCounter()
    for i in range(0, len(encoded), step):
        counter.feed(encoded[i : i + step])
    counter.close()
    assert counter.decoded == len(binascii.a2b_qp(encoded)) == 20


@pytest.mark.parametrize(
    "head, letter",
    [
        (b"Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", True),
        (b"Subject: no content type at all\r\n\r\n", True),
        (b"Content-Type: text/html\r\n\r\n", True),
        (b"Content-Type: text/plain; name=\"a.txt\"\r\n\r\n", False),
        (b"Content-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\n", False),
        (b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n", False),
        (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n", False),
        (b"Content-Type:\r\n application/pdf\r\n\r\n", False),  # folded value
        (b"Subject: x\r\nnot a header line\r\nContent-Type: application/pdf\r\n\r\n", True),
    ],
)
def test_letter_header_sections_measure_zero_and_files_do_not(head: bytes, letter: bool) -> None:
    """A one-part message is a letter (0 bytes) or a file by its header section alone; a
    multipart whose delimiter never comes is counted whole (it cannot be split)."""
    body = base64.encodebytes(random.Random(1).randbytes(3000)).replace(b"\n", b"\r\n")
    assert (measure_attachments(head + body).total_decoded_bytes == 0) is letter


# Where the attachment walker that quota had and the storage parser disagreed, the stricter reading
# is kept: no structure hides attachment bytes from the limit.


@pytest.mark.parametrize("levels, counted_whole", [(2, False), (4, True)])
def test_nesting_deeper_than_the_limit_counts_whole(levels: int, counted_whole: bool) -> None:
    """One nesting limit (``limits.mime_max_depth``): within it an attachment counts decoded;
    a multipart at the limit is not split and its whole body counts, the message is broken."""
    raw = attachment(b"a" * 3000)
    for level in range(levels):
        raw = multipart([text_part(), raw], boundary=f"=_n{level}".encode(), headers=[])
    measure = measure_attachments(raw, max_depth=3)
    assert measure.broken is counted_whole
    if counted_whole:
        assert measure.total_decoded_bytes > len(b64(b"a" * 3000)) and measure.parts[0][0] is None
    else:
        assert measure.parts == [("bao-cao.pdf", 3000)]


def test_multipart_without_any_delimiter_counts_whole() -> None:
    """A multipart whose delimiter never comes cannot be split: its body counts (the walker
    quota had counted nothing)."""
    body = b"This is a MIME message.\r\n" + b64(b"x" * 5000)
    raw = b'Content-Type: multipart/mixed; boundary="=_never"\r\n\r\n' + body
    measure = measure_attachments(raw)
    assert measure.broken and measure.total_decoded_bytes == len(body)


def test_digest_member_without_content_type_is_a_forwarded_message() -> None:
    """In multipart/digest a part without Content-Type is message/rfc822 (RFC 2046 5.1.5): a
    forwarded message, counted (the walker quota had read it as letter text)."""
    member = b"\r\nFrom: x@y\r\nSubject: t\r\n\r\nhello"  # no header of its own, then the message
    raw = multipart([member], subtype="digest")
    assert measure_attachments(raw).parts == [(None, len(member) - 2)]


def test_parts_past_the_part_limit_count_whole() -> None:
    """After 5,000 parts the parser reads the rest as the last part's content: that part counts
    whole, so an attachment placed after thousands of empty parts is not hidden."""
    filler = [part(["Content-Type: text/plain"], b"x")] * 5000
    raw = multipart([*filler, attachment(b"y" * 100_000)])
    measure = measure_attachments(raw)
    assert measure.broken and measure.total_decoded_bytes > 100_000
