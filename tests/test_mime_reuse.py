"""One parse per received message: the stored message's metadata from the parse of the spool
(storage.mime.reuse.with_head) is exactly what parsing the stored bytes gives, or None."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from storage.mime import parse
from storage.mime.reuse import with_head

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.eml"))
TRACE = (b"Return-Path: <annv@molisa.gov.vn>\r\nAuthentication-Results: mail.example.gov.vn; spf=pass\r\n"
         b"Received: from client (client [10.0.0.1])\r\n\tby mail.example.gov.vn; Mon, 7 Dec 2026 10:00:00 +0000\r\n")
ODD = [
    b"Subject: plain\r\n\r\nhello\r\n",
    b"\r\nno header at all\r\n",
    b"Subject: no body",
    b"Subject: header to the end\r\n",
    b"Subject: x\r\nnot a field line\r\nbody\r\n",
    b"From annv@molisa.gov.vn Mon Dec  7 10:00:00 2026\r\nSubject: mbox\r\n\r\nbody\r\n",
    b" folded first line\r\nSubject: x\r\n\r\nbody\r\n",
    b"Subject: lf only\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\nno delimiter\r\n",
    b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody",
    b"Subject: =?utf-8?b?VGnhur9uZyBWaeG7h3Q=?=\r\nFrom: \xc4\x90\xc3\xa0o <a@b>\r\n\r\nb\xe1\xbb\x99\r\n",
]


def messages() -> list[bytes]:
    found = [p.read_bytes() for p in CORPUS] + ODD
    rng = random.Random(2046)
    for raw in list(found[:10]):
        damaged = bytearray(raw)
        for _ in range(3):
            i = rng.randrange(len(damaged) or 1)
            damaged[i:i] = rng.choice([b"\r\n", b"\n--", b"Content-Type: multipart/mixed\r\n", b"\xff"])
        found.append(bytes(damaged))
    return found


@pytest.mark.parametrize("search_text", [True, False])
@pytest.mark.parametrize("prefix", [b"", TRACE])
def test_prefixed_message_metadata_equals_a_full_parse(prefix: bytes, search_text: bool) -> None:
    """MX: stored = trace headers + the message as received."""
    reused = 0
    for raw in messages():
        parsed = parse(raw, search_text=search_text, measure=True)
        head = raw[: parsed["structure"]["body_start"]]
        result = with_head(parsed, prefix, head, search_text=search_text)
        if result is not None:
            reused += 1
            assert result == parse(prefix + raw, search_text=search_text), raw[:200]
    assert reused >= len(CORPUS)


def test_replaced_header_section_metadata_equals_a_full_parse() -> None:
    """Submission: stored = trace headers + a cleaned header section + the body as received."""
    for raw in messages():
        parsed = parse(raw, measure=True)
        body_at = parsed["structure"]["body_start"]
        cleaned = raw[:body_at].replace(b"\r\nBcc:", b"\r\nX-Was-Bcc:").replace(b"\r\n\r\n", b"\r\nDate: now\r\n\r\n", 1)
        result = with_head(parsed, TRACE + cleaned, b"", search_text=True)
        if result is not None:
            assert result == parse(TRACE + cleaned + raw[body_at:]), raw[:200]


def test_a_different_content_type_is_parsed_again() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n"
    parsed = parse(raw, measure=True)
    assert with_head(parsed, b"Content-Type: text/plain\r\n\r\n", b"", search_text=True) is None
    assert with_head(parsed, b"Content-Type: text/plain\r\n", raw[:45], search_text=True) is None
    assert with_head(parsed, b"Received: x\r\n", raw[:45], search_text=True) is not None


class Trickle(io.RawIOBase):
    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.pos = data, step, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        chunk = self.data[self.pos : self.pos + self.step]
        self.pos += len(chunk)
        return chunk


@pytest.mark.parametrize("step", [1, 7, 4096])
def test_short_reads_parse_as_whole_reads(step: int) -> None:
    """A stream that returns less than asked (a pipe) parses as a file: header lines are never
    split where a block read would have given them whole."""
    for raw in messages()[:12]:
        assert parse(Trickle(raw, step), measure=True) == parse(raw, measure=True)  # type: ignore[arg-type]


def test_store_reuses_the_parse_and_reads_only_the_header_again(store_url, tmp_path, monkeypatch):
    """store.messages.put_blob(parsed=store.messages.parse_message(...)) gives the metadata a fresh parse gives; the
    parser then reads only the header section, for a received message and for one whose header
    section was replaced (submission)."""
    from storage.sql import SqlStore, core as sqlcore

    store = SqlStore(store_url, blob_dir=tmp_path / "blobs")
    try:
        raw = next(p.read_bytes() for p in CORPUS if b"multipart" in p.read_bytes())
        body_start = store.messages.parse_message(raw)["structure"]["body_start"]
        cleaned = raw[:body_start].replace(b"\r\n\r\n", b"\r\nDate: now\r\n\r\n", 1)
        for prefix, skip in ((TRACE, 0), (TRACE + cleaned, body_start)):
            expected = store.messages.put_blob(io.BytesIO(raw[skip:]), prefix=prefix).meta
            spool = io.BytesIO(raw)
            parsed = store.messages.parse_message(spool, measure=True)
            spool.seek(skip)
            seen: list[int] = []
            real = sqlcore._parse
            monkeypatch.setattr(sqlcore, "_parse", lambda s, **kw: seen.append(1) or real(s, **kw))
            assert store.messages.put_blob(spool, prefix=prefix, parsed=parsed).meta == expected
            monkeypatch.setattr(sqlcore, "_parse", real)
            assert seen == []
    finally:
        store.close()
