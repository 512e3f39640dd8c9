"""Text extraction of the classified-document guard (R-SEC-3): every format, nested archives and
forwarded messages, unreadable documents, and the worker processes' time and memory bounds.

Documents are written by the libraries the guard reads them with (tests/classified_docs.py)."""

from __future__ import annotations

import asyncio
import io
import zipfile

import pytest

from config.classified import Classified
from smtp.classified.extract import Bounds
from smtp.classified.worker import Scanner, scan
from tests.classified_docs import docx, letter, message, odt, pdf, xlsx, zip_of

CFG = Classified()
STAMPED_LETTER = letter("stamped/ke-hoach-toi-mat.txt").splitlines()
CLEAN_LETTER = letter("clean/bi-mat-thu-tin.txt").splitlines()


def check(raw: bytes, bounds: Bounds = Bounds(), timeout: float = 30):
    return scan(raw, CFG.markings, CFG.labels, CFG.patterns, bounds, timeout)


def mail(attachments=None, *, subject="Báo cáo tuần", body="Kính gửi anh, em gửi tài liệu.", **kw) -> bytes:
    return message("an@example.gov.vn", "binh@other.gov.vn", subject, body, attachments, **kw)


@pytest.mark.parametrize("name, make, marking", [
    ("ke-hoach.pdf", lambda: pdf(STAMPED_LETTER), "Tối mật"),
    ("to-trinh.docx", lambda: docx(["Kính gửi: Lãnh đạo Bộ", "Nội dung ..."], header="MẬT"), "Mật"),
    ("quyet-dinh.docx", lambda: docx(["QUYẾT ĐỊNH"], box="TUYỆT MẬT"), "Tuyệt mật"),
    ("bao-cao.odt", lambda: odt(["BỘ KHOA HỌC VÀ CÔNG NGHỆ", "Độ mật: Mật", "BÁO CÁO"]), "Mật"),
    ("tong-hop.xlsx", lambda: xlsx([["STT", "Nội dung"], ["TỐI MẬT"], ["1", "Kinh phí"]]), "Tối mật"),
    ("ghi-chu.txt", lambda: "DO MAT: TUYET MAT\nGhi chu".encode(), "Tuyệt mật"),
    ("ho-so.zip", lambda: zip_of({"ke-hoach.pdf": pdf(STAMPED_LETTER), "readme.txt": b"xem tep"}), "Tối mật"),
    ("long-nhau.zip", lambda: zip_of({"trong.zip": zip_of({"to-trinh.docx": docx(["MẬT"])})}), "Mật"),
])
def test_stamp_in_each_document_format(name, make, marking):
    found = check(mail({name: make()}))
    assert found.verdict == "stamped", found
    assert found.marking == marking
    assert name in found.part


@pytest.mark.parametrize("name, make", [
    ("cong-van.pdf", lambda: pdf(CLEAN_LETTER)),
    ("cong-van.docx", lambda: docx(CLEAN_LETTER, header="UBND TỈNH LÂM ĐỒNG")),
    ("cong-van.odt", lambda: odt(CLEAN_LETTER)),
    ("bang.xlsx", lambda: xlsx([["Mật khẩu", "Đổi định kỳ"], ["Bí mật thư tín", "Bảo đảm"]])),
    ("ho-so.zip", lambda: zip_of({"cong-van.pdf": pdf(CLEAN_LETTER)})),
    ("anh.png", lambda: b"\x89PNG\r\n\x1a\n" + b"MAT\n" * 10),  # not text: not read
])
def test_ordinary_documents_pass(name, make):
    assert check(mail({name: make()})).verdict == "clean"


def test_subject_html_body_and_forwarded_message():
    assert check(mail(subject="[MẬT] Kế hoạch")).part == "tiêu đề / subject"
    html = "<p>Kính gửi</p><table><tr><td><b>TỐI MẬT</b></td></tr></table><p>Nội dung</p>"
    found = check(mail(html=html))
    assert (found.verdict, found.marking, found.part) == ("stamped", "Tối mật", "nội dung thư / body")
    inner = mail({"bao-cao.odt": odt(["Độ mật: Tuyệt mật"])}, subject="Báo cáo")
    found = check(mail(subject="Fwd: Báo cáo", forward=inner))
    assert found.marking == "Tuyệt mật" and "forwarded message" in found.part and "bao-cao.odt" in found.part
    assert check(mail(subject="Mật khẩu mới", body="\n".join(CLEAN_LETTER))).verdict == "clean"


@pytest.mark.parametrize("name, make, why", [
    ("mat.pdf", lambda: pdf(STAMPED_LETTER, password="khoa"), "encrypted PDF"),
    ("ho-so.zip", lambda: zip_of({"ke-hoach.txt": b"MAT"}, password="khoa"), "password-protected"),
    ("hong.pdf", lambda: b"%PDF-1.4\n1 0 obj <<>>\n", "cannot be read"),
    ("hong.docx", lambda: b"PK\x03\x04 not really", "cannot be read"),
])
def test_unreadable_documents_are_reported_not_passed(name, make, why):
    found = check(mail({name: make()}))
    assert found.verdict == "unreadable"
    assert name in found.part and why in found.detail


def test_archive_bounds():
    big = zip_of({"a.txt": b"x" * 300_000})
    found = check(mail({"a.zip": big}), Bounds(max_unpacked=100_000))
    assert (found.verdict, found.detail) == ("unreadable", "archive too large when unpacked")
    deep = docx(["MẬT"])
    for level in range(6):
        deep = zip_of({f"l{level}.zip" if level else "x.docx": deep})
    assert check(mail({"deep.zip": deep})).detail == "nested too deep"


def _zeros_zip(megabytes: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z, z.open("zeros.txt", "w", force_zip64=True) as f:
        chunk = b"\0" * (1 << 20)
        for _ in range(megabytes):
            f.write(chunk)
    return out.getvalue()


async def test_worker_processes_bound_memory_and_time():
    """An archive that unpacks to more than a process may hold ends as ``unreadable`` (a
    MemoryError inside the worker), and so does a message not read within the time limit; the
    processes keep serving afterwards."""
    scanner = Scanner(Classified(workers=1, memory="200MiB", max_unpacked="1GiB"))
    try:
        found = await scanner.scan(mail({"a.zip": _zeros_zip(260)}))
        assert (found.verdict, found.detail) == ("unreadable", "too large to read in memory")
        found = await scanner.scan(mail({"b.pdf": pdf(STAMPED_LETTER)}))
        assert found.verdict == "stamped"
    finally:
        scanner.close()
    scanner = Scanner(Classified(workers=1, timeout=0.001))
    try:
        await scanner.warm()
        found = await scanner.scan(mail({f"p{i}.pdf": pdf(CLEAN_LETTER) for i in range(30)}))
        assert found.verdict == "unreadable" and found.detail.startswith("not read within")
    finally:
        scanner.close()


async def test_event_loop_keeps_running_during_a_20mb_attachment():
    """The loop only awaits: a ticker on the loop keeps ticking while the worker reads a 20 MB PDF."""
    scanner = Scanner(Classified(workers=1))
    raw = mail({"scan.pdf": pdf(STAMPED_LETTER, pad=20 * 1024 * 1024)})
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0)  # yield only: counts turns of the loop, waits no fixed time
            ticks += 1

    try:
        await scanner.warm()
        task = asyncio.ensure_future(ticker())
        found = await scanner.scan(raw)
        task.cancel()
        assert found.verdict == "stamped" and "scan.pdf" in found.part
        assert ticks >= 3
    finally:
        scanner.close()
