"""The e-mail directory (danh bạ thư điện tử, R-DIR-1): every unit, group and personal address
that receives mail, with names, units and titles, in Vietnamese order, as CSV, JSON, vCard, LDIF
or a standalone HTML page an agency publishes on its portal.

Vietnamese order (``collation_key``, pure): letters a ă â b c d đ e ê g h i k l m n o ô ơ p q r
s t u ư v x y (f j w z of foreign names at their Latin places), so Đ sorts after D and Ư after U;
words compared one by one, the letters first and then the tone, in the order dictionaries use:
ngang, huyền, hỏi, ngã, sắc, nặng (ca < cà < cả < cã < cá < cạ). Persons are listed by given name,
then the whole name, as Vietnamese staff lists are.

Mobile numbers from the registration form are not published; office phones are.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import json
import unicodedata
from dataclasses import dataclass

from storage.api import AccountKind

FORMATS = ("csv", "json", "vcf", "ldif", "html")

_ALPHABET = "aăâbcdđeêfghijklmnoôơpqrstuưvwxyz"
_RANK = {ch: i for i, ch in enumerate(_ALPHABET)}
_LETTER_MARKS = {("a", "\u0306"): "ă", ("a", "\u0302"): "â", ("e", "\u0302"): "ê", ("o", "\u0302"): "ô",
                 ("o", "\u031b"): "ơ", ("u", "\u031b"): "ư"}
# ngang (no mark) 0, huyền 1, hỏi 2, ngã 3, sắc 4, nặng 5.
_TONES = {"\u0300": 1, "\u0309": 2, "\u0303": 3, "\u0301": 4, "\u0323": 5}
_KIND_ORDER = {AccountKind.UNIT: 0, AccountKind.GROUP: 1, AccountKind.PERSONAL: 2}
_KIND_VI = {AccountKind.UNIT: "Đơn vị", AccountKind.GROUP: "Nhóm", AccountKind.PERSONAL: "Cá nhân"}


def _syllable(word: str) -> tuple[tuple[int, ...], int]:
    """(primary weights of the base letters, tone) of one word."""
    weights: list[int] = []
    tone = 0
    for ch in unicodedata.normalize("NFD", word.lower()):
        if ch in _TONES:
            tone = tone or _TONES[ch]
        elif unicodedata.combining(ch):
            if weights and weights[-1] >= 100:
                base = _ALPHABET[weights[-1] - 100]
                letter = _LETTER_MARKS.get((base, ch))
                if letter is not None:
                    weights[-1] = 100 + _RANK[letter]
        elif ch in _RANK:
            weights.append(100 + _RANK[ch])
        elif ch.isdigit():
            weights.append(10 + int(ch))
        else:
            weights.append(1000 + ord(ch))
    return tuple(weights), tone


def collation_key(text: str) -> tuple:
    """Sort key for Vietnamese text as dictionaries order it (see the module docstring).

    Case and exact spelling only break ties, so the order is total and stable."""
    words = unicodedata.normalize("NFC", text).split()
    syllables = [_syllable(w) for w in words]
    return tuple(x for s in syllables for x in (s[0], s[1])), text


def person_sort_key(full_name: str) -> tuple:
    """Given name (the last word) first, then the whole name: how staff lists are ordered."""
    words = full_name.split()
    return collation_key(words[-1] if words else ""), collation_key(full_name)


@dataclass(frozen=True, slots=True)
class Entry:
    kind: AccountKind
    name: str
    address: str
    other_addresses: tuple[str, ...]
    unit: str  # unit path joined with " / "
    title: str
    phone: str

    def as_dict(self) -> dict:
        return {"kind": self.kind.value, "name": self.name, "address": self.address,
                "other_addresses": list(self.other_addresses), "unit": self.unit, "title": self.title,
                "phone": self.phone}


def entries(rows) -> list[Entry]:
    """``storage.api.DirectoryRow`` values → sorted entries: units, then groups, then persons."""
    result = [Entry(r.account.kind, r.account.display_name, r.account.address, tuple(r.addresses[1:]),
                    " / ".join(r.unit_path), r.title, r.phone) for r in rows]

    def key(e: Entry) -> tuple:
        name = person_sort_key(e.name) if e.kind is AccountKind.PERSONAL else (collation_key(e.name),)
        return _KIND_ORDER.get(e.kind, 9), name, e.address

    return sorted(result, key=key)


def render(items: list[Entry], fmt: str, *, title: str = "Danh bạ thư điện tử", base_dn: str = "") -> str:
    """The directory in one of ``FORMATS``; ``base_dn`` is used by LDIF only."""
    if fmt == "csv":
        return _csv(items)
    if fmt == "json":
        return _json(items, title)
    if fmt == "vcf":
        return _vcf(items)
    if fmt == "ldif":
        return _ldif(items, base_dn)
    if fmt == "html":
        return _html(items, title)
    raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")


_CSV_HEADER = ("Loại", "Tên", "Địa chỉ thư", "Địa chỉ khác", "Đơn vị", "Chức vụ", "Điện thoại")


def _csv(items: list[Entry]) -> str:
    """UTF-8 with BOM when written (the CLI adds it) so spreadsheet programs read Vietnamese."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_CSV_HEADER)
    for e in items:
        writer.writerow((_KIND_VI[e.kind], e.name, e.address, " ".join(e.other_addresses), e.unit, e.title, e.phone))
    return out.getvalue()


def _json(items: list[Entry], title: str) -> str:
    return json.dumps({"title": title, "entries": [e.as_dict() for e in items]}, ensure_ascii=False, indent=2) + "\n"


def _vescape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")


def _fold_line(line: str) -> str:
    """RFC 6350 3.2: lines of at most 75 octets, continued with CRLF + space; never split a
    UTF-8 sequence."""
    out, current = [], b""
    for ch in line:
        b = ch.encode("utf-8")
        if len(current) + len(b) > (75 if not out else 74):
            out.append(current.decode("utf-8"))
            current = b""
        current += b
    out.append(current.decode("utf-8"))
    return "\r\n ".join(out)


def _vcf(items: list[Entry]) -> str:
    lines: list[str] = []
    for e in items:
        card = ["BEGIN:VCARD", "VERSION:4.0", f"FN:{_vescape(e.name)}"]
        if e.kind is AccountKind.PERSONAL:
            words = e.name.split()
            family, given = (words[0], words[-1]) if len(words) > 1 else ("", e.name)
            middle = " ".join(words[1:-1])
            card.append(f"N:{_vescape(family)};{_vescape(given)};{_vescape(middle)};;")
            card.append("KIND:individual")
        else:
            card.append("KIND:org" if e.kind is AccountKind.UNIT else "KIND:group")
        card.append(f"EMAIL;TYPE=work;PREF=1:{e.address}")
        card.extend(f"EMAIL;TYPE=work:{a}" for a in e.other_addresses)
        if e.unit:
            card.append("ORG:" + ";".join(_vescape(p) for p in e.unit.split(" / ")))
        if e.title:
            card.append(f"TITLE:{_vescape(e.title)}")
        if e.phone:
            card.append(f"TEL;TYPE=work,voice;VALUE=uri:tel:{e.phone}")
        card.append("END:VCARD")
        lines.extend(_fold_line(c) for c in card)
    return "\r\n".join(lines) + "\r\n"


def _ldif_value(attr: str, value: str) -> str:
    """RFC 2849: a value that is not a SAFE-STRING (non-ASCII, leading space/colon/<) is base64."""
    safe = value.isascii() and not value.startswith((" ", ":", "<")) and not value.endswith(" ") \
        and "\n" not in value and "\r" not in value and "\0" not in value
    if safe:
        return f"{attr}: {value}"
    return f"{attr}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}"


def _ldif(items: list[Entry], base_dn: str) -> str:
    """inetOrgPerson entries under ``ou=directory,<base_dn>`` (R-PROTO-3: importable into LDAP)."""
    base = f"ou=directory,{base_dn}" if base_dn else "ou=directory"
    blocks = [f"version: 1\n\ndn: {base}\nobjectClass: top\nobjectClass: organizationalUnit\nou: directory\n"]
    for e in items:
        words = e.name.split()
        attrs = [f"dn: mail={e.address},{base}", "objectClass: top", "objectClass: person",
                 "objectClass: organizationalPerson", "objectClass: inetOrgPerson",
                 _ldif_value("cn", e.name), _ldif_value("sn", words[0] if words else e.name)]
        if e.kind is AccountKind.PERSONAL and len(words) > 1:
            attrs.append(_ldif_value("givenName", words[-1]))
        attrs.append(f"mail: {e.address}")
        attrs.extend(f"mail: {a}" for a in e.other_addresses)
        attrs.append(_ldif_value("employeeType", e.kind.value))
        if e.unit:
            attrs.append(_ldif_value("ou", e.unit))
        if e.title:
            attrs.append(_ldif_value("title", e.title))
        if e.phone:
            attrs.append(_ldif_value("telephoneNumber", e.phone))
        blocks.append("\n".join(attrs) + "\n")
    return "\n".join(blocks)


_STYLE = """body{font-family:system-ui,"Segoe UI",Arial,sans-serif;margin:2rem auto;max-width:70rem;color:#1a1a1a}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:2px solid #b00;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd;
vertical-align:top}th{background:#f4f4f4}a{color:#0645ad}small{color:#555}"""


def _html(items: list[Entry], title: str) -> str:
    esc = html.escape
    today = _dt.date.today().strftime("%d/%m/%Y")
    parts = ["<!DOCTYPE html>", '<html lang="vi">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
             f"<h1>{esc(title)}</h1>", f"<p><small>Cập nhật ngày {today} · {len(items)} địa chỉ</small></p>"]
    for kind, heading in ((AccountKind.UNIT, "Hộp thư đơn vị"), (AccountKind.GROUP, "Hộp thư nhóm"),
                          (AccountKind.PERSONAL, "Hộp thư cá nhân")):
        section = [e for e in items if e.kind is kind]
        if not section:
            continue
        parts.append(f"<h2>{heading}</h2>")
        parts.append("<table><thead><tr><th>Tên</th><th>Địa chỉ thư</th><th>Đơn vị</th><th>Chức vụ</th>"
                     "<th>Điện thoại</th></tr></thead><tbody>")
        for e in section:
            mails = "<br>".join(f'<a href="mailto:{esc(a)}">{esc(a)}</a>' for a in (e.address, *e.other_addresses))
            parts.append(f"<tr><td>{esc(e.name)}</td><td>{mails}</td><td>{esc(e.unit)}</td>"
                         f"<td>{esc(e.title)}</td><td>{esc(e.phone)}</td></tr>")
        parts.append("</tbody></table>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
