"""Pure MIME metadata and Vietnamese text handling (no database, no protocol code).

- ``parse(source)``: the metadata cached at delivery (docs/CONTRACTS.md "MIME metadata").
- ``decode_header(raw)``: RFC 2047 / RFC 6532 / legacy 8-bit header text → NFC (R-TEXT-1);
  ``decode_addresses(raw)`` the same for address headers ("Name <addr>, ...").
- ``encode_header(text, utf8=False)``, ``encode_address(name, addr)``: header text we write,
  NFC and RFC 2047 UTF-8 unless the next hop has SMTPUTF8.
- ``fold(text, diacritics=True)``: the search normalisation (NFC, casefold, tones removed, đ→d).
- ``html_to_text(markup)``, ``decode_text(data, charset)``, ``guess_vietnamese(data, declared)``,
  ``filename(part)``: display and search helpers. Stored bytes are never changed (R-SEC-2).
"""

from storage.mime.address import parse_addresses
from storage.mime.encode import encode_address, encode_header
from storage.mime.envelope import readable_addresses
from storage.mime.headers import decode_header, decode_text
from storage.mime.parser import parse
from storage.mime.text import fold, html_to_text
from storage.mime.detect import guess_vietnamese


def filename(part: dict) -> str | None:
    """A part's file name for people (disposition ``filename``, else type ``name``), decoded.

    RFC 2231 values are already text in the params; RFC 2047 words some mailers put in quoted
    names (not allowed, common) are decoded here.
    """
    candidates = list((part.get("disposition") or [None, []])[1]) + list(part.get("params") or [])
    for key in ("filename", "name"):
        for name, value in candidates:
            if name == key and value:
                return decode_header(value)
    return None


def decode_addresses(raw: str | bytes) -> str:
    """An address header as people read it: "Nguyễn Văn A <a@example.gov.vn>, ..." (NFC)."""
    return readable_addresses(raw if isinstance(raw, bytes) else raw.encode("utf-8", errors="surrogateescape"))


__all__ = ["parse", "decode_header", "decode_text", "fold", "html_to_text", "guess_vietnamese", "filename",
           "decode_addresses", "parse_addresses", "encode_header", "encode_address"]
