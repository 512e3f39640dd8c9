"""Text of a message for the classified-document guard (R-SEC-3): subject, text bodies and the
text of attached documents, as (part name, text, is_subject).

Runs inside the guard's worker processes (smtp/classified/worker.py), never on the event loop:
parsing a PDF is CPU work and an attacker's document may be built to be slow. Well-kept
libraries read the formats: ``pypdf`` (PDF), ``python-docx`` (DOCX: body, tables, text boxes,
page headers), ``odfpy`` (ODT: paragraphs, headings, page headers), ``openpyxl`` (XLSX cells);
ZIP archives and forwarded messages are opened and walked. Everything is bounded (``Bounds``):
nesting, uncompressed bytes, pages, cells and characters.

A document that cannot be read — an encrypted PDF, a password-protected ZIP entry, a broken
file of a type we read — raises ``Unreadable``: what the guard does then is configured
(``classified.unreadable``), since "nothing is ever delivered half-checked".
"""

from __future__ import annotations

import binascii
import io
import zipfile
from dataclasses import dataclass
from typing import Iterator

from storage.mime import decode_header, decode_text, filename, html_to_text, parse

#: A part found: (name for the sender and the audit, its text, whether it is a subject line).
Part = tuple[str, str, bool]


class Unreadable(Exception):
    """A document of a kind the guard reads, whose text it could not get (``part``: which)."""

    def __init__(self, part: str, why: str) -> None:
        super().__init__(f"{part}: {why}")
        self.part = part
        self.why = why


@dataclass(frozen=True, slots=True)
class Bounds:
    max_depth: int = 5  # forwarded messages and archives inside each other
    max_unpacked: int = 200 * 1024 * 1024  # bytes out of ZIP archives, all of them together
    max_pages: int = 2000  # PDF pages read
    max_cells: int = 1_000_000  # XLSX cells read
    max_chars: int = 20_000_000  # text handed to the detector, all parts together


_PDF = ("application/pdf", "application/x-pdf")
_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_ODT = "application/vnd.oasis.opendocument.text"
_ZIP = ("application/zip", "application/x-zip-compressed", "application/x-zip")


def kind_of(content_type: str, filename: str) -> str | None:
    """pdf | docx | xlsx | odt | zip | eml | text | None (not read), by type then by name."""
    name = filename.lower()
    ct = content_type.lower()
    if ct in _PDF or name.endswith(".pdf"):
        return "pdf"
    if ct == _DOCX or name.endswith(".docx"):
        return "docx"
    if ct == _XLSX or name.endswith((".xlsx", ".xlsm")):
        return "xlsx"
    if ct == _ODT or name.endswith(".odt"):
        return "odt"
    if ct in _ZIP or name.endswith(".zip"):
        return "zip"
    if ct == "message/rfc822" or name.endswith(".eml"):
        return "eml"
    if ct.startswith("text/") or name.endswith((".txt", ".csv", ".htm", ".html", ".xml", ".md")):
        return "text"
    return None


class _Walker:
    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self.unpacked = 0
        self.chars = 0

    def _text(self, name: str, text: str, subject: bool = False) -> Part:
        self.chars += len(text)
        if self.chars > self.bounds.max_chars:
            raise Unreadable(name, "too much text to check")
        return name, text, subject

    # -- messages ---------------------------------------------------------------------------
    def message(self, data: bytes, where: str, depth: int) -> Iterator[Part]:
        """A message: ``storage.mime.parse`` (the store's own parser: offsets, no copies; the
        stdlib's email parser takes seconds on a 20 MB attachment) then each leaf part."""
        parsed = parse(data, search_text=False)
        subject = parsed["search"].get("subject") or ""
        yield from self._walk(data, parsed["structure"], subject, where, depth)

    def _walk(self, data: bytes, structure: dict, subject: str, where: str, depth: int) -> Iterator[Part]:
        if subject:
            yield self._text(f"{where}tiêu đề / subject", subject, True)
        stack = [structure]
        index = 0
        while stack:
            part = stack.pop(0)
            if part.get("parts"):
                stack[:0] = part["parts"]
                continue
            index += 1
            ct = f"{part['type']}/{part['subtype']}"
            name = filename(part) or ""
            disposition = (part.get("disposition") or [None])[0]
            kind = kind_of(ct, name)
            if kind is None:
                continue
            if name:
                label = f"{where}tệp đính kèm / attachment “{name}”"
            elif kind == "eml":
                label = f"{where}thư chuyển tiếp / forwarded message"
            elif disposition == "attachment":
                label = f"{where}phần {index} / part {index}"
            else:
                label = f"{where}nội dung thư / body"
            body = _decode(data[part["body_start"]:part["body_end"]], part.get("encoding") or "7bit")
            if kind == "eml":
                inner = part.get("message")
                if inner is not None and (part.get("encoding") or "7bit") in ("7bit", "8bit", "binary"):
                    raw_subject = (inner.get("envelope") or {}).get("subject") or ""
                    nested = f"{label} › "
                    yield from self._nested(label, depth, lambda: self._walk(
                        data, inner["structure"], decode_header(raw_subject), nested, depth + 1))
                else:
                    yield from self.document("eml", body, label, depth)
                continue
            if kind == "text":
                charset = dict(part.get("params") or []).get("charset")
                yield self._text(label, _as_text(body, charset, ct, name))
            else:
                yield from self.document(kind, body, label, depth)

    def _nested(self, label: str, depth: int, walk) -> Iterator[Part]:
        if depth >= self.bounds.max_depth:
            raise Unreadable(label, "nested too deep")
        yield from walk()

    # -- documents ---------------------------------------------------------------------------
    def document(self, kind: str, data: bytes, label: str, depth: int) -> Iterator[Part]:
        if kind == "zip":
            yield from self._nested(label, depth, lambda: self.archive(data, label, depth + 1))
            return
        if kind == "eml":
            yield from self._nested(label, depth, lambda: self.message(data, f"{label} › ", depth + 1))
            return
        if kind == "text":
            yield self._text(label, _as_text(data, None, "text/plain", label))
            return
        reader = {"pdf": self.pdf, "docx": _docx, "xlsx": self.xlsx, "odt": _odt}[kind]
        try:
            text = reader(data)
        except Unreadable as e:
            raise Unreadable(label, e.why) from None
        except MemoryError:
            raise
        except Exception as e:  # a broken file of a type we read: not checked, so not passed
            raise Unreadable(label, f"cannot be read ({type(e).__name__})") from None
        yield self._text(label, text)

    def archive(self, data: bytes, label: str, depth: int) -> Iterator[Part]:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            infos = archive.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise Unreadable(label, f"broken archive ({type(e).__name__})") from None
        for info in infos:
            if info.is_dir():
                continue
            name = f"{label} › {info.filename}"
            if info.flag_bits & 0x1:
                raise Unreadable(name, "password-protected")
            kind = kind_of("", info.filename)
            if kind is None:
                continue
            self.unpacked += info.file_size
            if self.unpacked > self.bounds.max_unpacked:
                raise Unreadable(name, "archive too large when unpacked")
            try:
                with archive.open(info) as f:
                    inner = f.read(info.file_size + 1)
            except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError) as e:
                raise Unreadable(name, f"cannot be unpacked ({type(e).__name__})") from None
            if len(inner) > info.file_size:  # the directory lied about the size: a zip bomb
                raise Unreadable(name, "archive entry larger than declared")
            yield from self.document(kind, inner, name, depth)

    def pdf(self, data: bytes) -> str:
        from pypdf import PdfReader
        from pypdf.errors import FileNotDecryptedError

        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # many PDFs are encrypted with an empty user password (print/copy restrictions only)
            try:
                if not reader.decrypt(""):
                    raise Unreadable("", "encrypted PDF")
            except (FileNotDecryptedError, NotImplementedError):
                raise Unreadable("", "encrypted PDF") from None
        texts = []
        for number, page in enumerate(reader.pages):
            if number >= self.bounds.max_pages:
                raise Unreadable("", f"more than {self.bounds.max_pages} pages")
            texts.append(page.extract_text() or "")
        return "\n".join(texts)

    def xlsx(self, data: bytes) -> str:
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        lines, cells = [], 0
        try:
            for sheet in book.worksheets:
                lines.append(sheet.title)
                for row in sheet.iter_rows(values_only=True):
                    for value in row:
                        cells += 1
                        if cells > self.bounds.max_cells:
                            raise Unreadable("", f"more than {self.bounds.max_cells} cells")
                        if isinstance(value, str):
                            lines.append(value)
        finally:
            book.close()
        return "\n".join(lines)


def _docx(data: bytes) -> str:
    """Every paragraph of the body (tables and text boxes included) and of the page headers and
    footers, one per line: a stamp is usually a paragraph in a box or a header."""
    from docx import Document
    from docx.oxml.ns import qn

    doc = Document(io.BytesIO(data))
    roots = [doc.element.body]
    for section in doc.sections:
        for hf in (section.header, section.first_page_header, section.even_page_header,
                   section.footer, section.first_page_footer, section.even_page_footer):
            if not hf.is_linked_to_previous:
                roots.append(hf._element)
    lines = []
    for root in roots:
        for p in root.iter(qn("w:p")):
            lines.append("".join(t.text or "" for t in p.iter(qn("w:t"))))
    return "\n".join(lines)


def _odt(data: bytes) -> str:
    from odf import teletype, text
    from odf.opendocument import load

    doc = load(io.BytesIO(data))
    lines = []
    for root in (doc.text, doc.masterstyles):
        if root is None:
            continue
        for element in (*root.getElementsByType(text.H), *root.getElementsByType(text.P)):
            lines.append(teletype.extractText(element))
    return "\n".join(lines)


def _decode(body: bytes, encoding: str) -> bytes:
    encoding = encoding.lower()
    if encoding == "base64":
        return binascii.a2b_base64(body)  # not strict: line breaks and stray characters skipped
    if encoding == "quoted-printable":
        return binascii.a2b_qp(body)
    return body


def _as_text(data: bytes, charset: str | None, content_type: str, filename: str) -> str:
    text = decode_text(data, charset)
    if content_type == "text/html" or filename.lower().endswith((".htm", ".html")):
        text = html_to_text(text)
    return text


def message_parts(data: bytes, bounds: Bounds = Bounds()) -> Iterator[Part]:
    """The parts of an RFC 5322 message, lazily (the caller stops at the first stamp)."""
    return _Walker(bounds).message(data, "", 0)
