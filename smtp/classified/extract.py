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

import email
import email.policy
import io
import zipfile
from dataclasses import dataclass
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Iterator

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
_BLOCK_TAGS = frozenset("p div br tr td th li h1 h2 h3 h4 h5 h6 table title blockquote pre center hr".split())


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
    def message(self, msg: EmailMessage, where: str, depth: int) -> Iterator[Part]:
        subject = str(msg.get("Subject", "") or "")
        if subject:
            yield self._text(f"{where}tiêu đề / subject", subject, True)
        for index, part in enumerate(msg.walk()):
            if part.is_multipart():
                continue
            ct = part.get_content_type()
            filename = part.get_filename() or ""
            is_attachment = part.get_content_disposition() == "attachment" or bool(filename)
            kind = kind_of(ct, filename)
            if kind is None:
                continue
            label = f"{where}tệp đính kèm / attachment “{filename}”" if filename else (
                f"{where}phần {index} / part {index}" if is_attachment else f"{where}nội dung thư / body")
            if kind == "eml":
                inner = part.get_payload()
                inner_msg = inner[0] if isinstance(inner, list) and inner else None
                if inner_msg is None:
                    inner_msg = email.message_from_bytes(part.get_payload(decode=True) or b"", policy=email.policy.default)
                yield from self._nested(label, depth, lambda: self.message(inner_msg, f"{label} › ", depth + 1))
                continue
            data = part.get_payload(decode=True) or b""
            if kind == "text":
                yield self._text(label, _as_text(data, part.get_content_charset(), ct, filename))
            else:
                yield from self.document(kind, data, label, depth)

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
            msg = email.message_from_bytes(data, policy=email.policy.default)
            yield from self._nested(label, depth, lambda: self.message(msg, f"{label} › ", depth + 1))
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


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(data)


def _as_text(data: bytes, charset: str | None, content_type: str, filename: str) -> str:
    try:
        text = data.decode(charset or "utf-8", "replace")
    except LookupError:
        text = data.decode("utf-8", "replace")
    if content_type == "text/html" or filename.lower().endswith((".htm", ".html")):
        parser = _HTMLText()
        parser.feed(text)
        parser.close()
        text = "".join(parser.out)
    return text


def message_parts(data: bytes, bounds: Bounds = Bounds()) -> Iterator[Part]:
    """The parts of an RFC 5322 message, lazily (the caller stops at the first stamp)."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    return _Walker(bounds).message(msg, "", 0)
