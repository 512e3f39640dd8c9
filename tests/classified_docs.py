"""Documents for the classified-document guard's tests (R-SEC-3), written by the same libraries
the guard reads them with (pypdf, python-docx, odfpy, openpyxl) and by Debian's ``zip`` (a
password-protected archive, which Python's zipfile cannot write).

The PDF is built with pypdf's writer: one page whose text is drawn in a Type0 font with a
``ToUnicode`` map, as word processors export Vietnamese (no glyphs are embedded: the guard reads
text, it does not render), optionally padded with an embedded file to reach a size.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
import zipfile
from email.message import EmailMessage
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus" / "classified"


def letter(name: str) -> str:
    """A letter of the corpus (stamped/*.txt, clean/*.txt)."""
    return (CORPUS / name).read_text(encoding="utf-8")


def pdf(lines: list[str], *, password: str | None = None, pad: int = 0) -> bytes:
    from pypdf import PdfWriter
    from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject, TextStringObject

    writer = PdfWriter()
    page = writer.add_blank_page(595, 842)
    chars = sorted(set("".join(lines)))
    code = {c: i + 1 for i, c in enumerate(chars)}
    cmap = ["/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
            "/CMapName /Adobe-Identity-UCS def /CMapType 2 def",
            "1 begincodespacerange <0000> <FFFF> endcodespacerange"]
    for start in range(0, len(chars), 100):
        chunk = chars[start:start + 100]
        cmap.append(f"{len(chunk)} beginbfchar")
        cmap += [f"<{code[c]:04X}> <{ord(c):04X}>" for c in chunk]
        cmap.append("endbfchar")
    cmap.append("endcmap CMapName currentdict /CMap defineresource pop end end")
    to_unicode = DecodedStreamObject()
    to_unicode.set_data("\n".join(cmap).encode("ascii"))
    info = DictionaryObject({NameObject("/Registry"): TextStringObject("Adobe"),
                             NameObject("/Ordering"): TextStringObject("Identity"),
                             NameObject("/Supplement"): NumberObject(0)})
    descendant = DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/CIDFontType2"),
        NameObject("/BaseFont"): NameObject("/TimesNewRoman"), NameObject("/CIDSystemInfo"): info,
        NameObject("/DW"): NumberObject(500),
    })
    font = DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type0"),
        NameObject("/BaseFont"): NameObject("/TimesNewRoman"), NameObject("/Encoding"): NameObject("/Identity-H"),
        NameObject("/DescendantFonts"): ArrayObject([writer._add_object(descendant)]),
        NameObject("/ToUnicode"): writer._add_object(to_unicode),
    })
    page[NameObject("/Resources")] = DictionaryObject({
        NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})})
    ops = ["BT", "/F1 12 Tf", "16 TL", "60 790 Td"]
    for line in lines:
        ops.append("<" + "".join(f"{code[c]:04X}" for c in line) + "> Tj T*")
    ops.append("ET")
    content = DecodedStreamObject()
    content.set_data("\n".join(ops).encode("ascii"))
    page[NameObject("/Contents")] = writer._add_object(content)
    if pad:
        writer.add_attachment("scan.bin", os.urandom(pad))
    if password is not None:
        writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx(paragraphs: list[str], *, header: str | None = None, box: str | None = None) -> bytes:
    """A Word document; ``header`` goes into the page header, ``box`` into a one-cell table
    (the stamp's box), above the paragraphs."""
    from docx import Document

    doc = Document()
    if header is not None:
        doc.sections[0].header.paragraphs[0].text = header
    if box is not None:
        doc.add_table(rows=1, cols=1).cell(0, 0).text = box
    for p in paragraphs:
        doc.add_paragraph(p)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def odt(paragraphs: list[str]) -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    doc = OpenDocumentText()
    for p in paragraphs:
        doc.text.addElement(P(text=p))
    out = io.BytesIO()
    doc.write(out)
    return out.getvalue()


def xlsx(rows: list[list[str]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Bang tong hop"
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def zip_of(files: dict[str, bytes], *, password: str | None = None) -> bytes:
    if password is None:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files.items():
                z.writestr(name, data)
        return out.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        subprocess.run(["zip", "-q", "-P", password, "out.zip", *files], cwd=tmp, check=True)
        return (Path(tmp) / "out.zip").read_bytes()


def message(sender: str, to: str, subject: str, body: str, attachments: dict[str, bytes] | None = None,
            *, html: str | None = None, forward: bytes | None = None) -> bytes:
    """An RFC 5322 message with attachments by file name (type guessed by the mail client's way)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    types = {".pdf": ("application", "pdf"), ".zip": ("application", "zip"), ".odt": ("application", "vnd.oasis.opendocument.text"),
             ".docx": ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document"),
             ".xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"), ".txt": ("text", "plain")}
    for name, data in (attachments or {}).items():
        maintype, subtype = types.get(Path(name).suffix, ("application", "octet-stream"))
        if maintype == "text":
            msg.add_attachment(data.decode("utf-8"), filename=name)
        else:
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    if forward is not None:
        from email import message_from_bytes, policy

        msg.add_attachment(message_from_bytes(forward, policy=policy.default))
    return bytes(msg)
