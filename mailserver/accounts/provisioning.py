"""Bulk provisioning from the registration form (most, Phụ lục 03; R-LIFE-1: accounts are created
on a unit's request): `mailserver account import FILE.csv`.

The sheet: UTF-8 with or without BOM, comma, semicolon or tab separated (found by trying each),
title lines above the header allowed ("Tên Đơn vị: ……"), header names matched without diacritics
or case ("Họ và tên người sử dụng", "ho ten", "Phòng ban/ Đơn vị công tác", "Chức vụ", "Điện
thoại", "Di động"; other columns are ignored and listed). Rows left blank, or holding only a TT
number, are skipped.

All or nothing: every row is checked first (empty or letterless name, unknown or ambiguous unit,
the same person twice in the file or already registered, malformed phone) and every problem is
reported with its line number; only a clean sheet is created, in ONE transaction
(``Organisation.create_people``). Addresses follow the profile's rule (R-ADDR-*) in the sheet's
order ("in order of registration"); initial passwords pass the strictest rule (R-PASS-3) and
must be changed at first login (R-PASS-1). The result sheets (one CSV per unit, readable by the
operator only) are written before the commit and moved into place after it, so no password is
ever lost and none is left behind for accounts that were not created.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import tempfile
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from config.settings import Settings
from mailserver.policy.addresses import AddressPolicyError, ascii_fold_name, derive_local_part, split_name
from storage.api import NewPerson, Organisation, Unit, person_key

BOM = "\ufeff"
DELIMITERS = (";", ",", "\t")


class ImportRefused(Exception):
    """The sheet has problems; nothing was created. ``errors`` are (line, message) pairs."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        super().__init__(f"{len(errors)} problem(s) in the sheet")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Row:
    line: int  # physical line where the record starts (1-based)
    tt: str
    name: str
    unit: str
    title: str
    phone: str
    mobile: str


@dataclass(frozen=True, slots=True)
class Planned:
    row: Row
    unit: Unit
    address: str
    phone: str  # normalised
    mobile: str


@dataclass
class Sheet:
    rows: list[Row]
    delimiter: str
    ignored_columns: list[str] = field(default_factory=list)


def _fold(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", ascii_fold_name(text).lower()).split())


def column_of(header: str) -> str | None:
    """Which field a header cell names (diacritics, case and punctuation ignored), or None."""
    h = _fold(header)
    if h in ("tt", "stt", "so tt", "so thu tu"):
        return "tt"
    if h.startswith(("ho va ten", "ho ten")) or h in ("name", "full name"):
        return "name"
    if h.startswith(("phong ban", "don vi")) or h in ("unit", "department"):
        return "unit"
    if h.startswith(("chuc vu", "chuc danh")) or h == "title":
        return "title"
    if "di dong" in h or h in ("mobile", "dtdd"):
        return "mobile"
    if h.startswith(("dien thoai", "so dien thoai")) or h == "phone":
        return "phone"
    return None


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportRefused([(line, "the file is not UTF-8: save the sheet as \"CSV UTF-8\"")]) from None
    return unicodedata.normalize("NFC", text.removeprefix(BOM))  # R-TEXT-1


def _records(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records, start = [], 1
    try:
        for cells in reader:
            records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ImportRefused([(reader.line_num, f"unreadable CSV: {exc}")]) from None
    return records


def read_sheet(data: bytes) -> Sheet:
    """Parse the registration form; ``ImportRefused`` if no header with a name column is found."""
    text = _decode(data)
    best = None
    for delimiter in DELIMITERS:
        records = _records(text, delimiter)
        for index, (_line, cells) in enumerate(records[:20]):
            columns = [column_of(c) for c in cells]
            if "name" in columns:
                score = len({c for c in columns if c})
                if best is None or score > best[0]:
                    best = (score, delimiter, records, index, cells, columns)
                break
    if best is None:
        raise ImportRefused([(1, "no header row with a name column (\"Họ và tên\") in the first 20 lines")])
    _score, delimiter, records, index, header, columns = best
    where: dict[str, int] = {}
    for i, col in enumerate(columns):
        if col and col not in where:
            where[col] = i
    ignored = [" ".join(h.split()) for h, c in zip(header, columns) if not c and h.strip()]

    def cell(cells: list[str], col: str) -> str:
        i = where.get(col)
        return " ".join(cells[i].split()) if i is not None and i < len(cells) else ""

    rows = []
    for line, cells in records[index + 1:]:
        row = Row(line, cell(cells, "tt"), cell(cells, "name"), cell(cells, "unit"), cell(cells, "title"),
                  cell(cells, "phone"), cell(cells, "mobile"))
        if not any((row.name, row.unit, row.title, row.phone, row.mobile)):
            continue  # blank, or a pre-numbered empty line of the form
        rows.append(row)
    return Sheet(rows, delimiter, ignored)


_LANDLINE = re.compile(r"0\d{9,10}")  # 02x + 8 digits since 2017; 10 digits before
_MOBILE = re.compile(r"0[35789]\d{8}")


def normalise_phone(text: str, *, mobile: bool) -> str | None:
    """Digits only, +84 → 0; a leading 0 that a spreadsheet dropped is restored. "" when empty,
    None when malformed."""
    raw = text.strip()
    if not raw:
        return ""
    digits = re.sub(r"[\s.\-()/]", "", raw)
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    if not digits.isdigit():
        return None
    if not digits.startswith("0") and len(digits) in (9, 10):
        digits = "0" + digits
    pattern = _MOBILE if mobile else _LANDLINE
    return digits if pattern.fullmatch(digits) else None


def _unit_index(units: list[Unit]) -> dict[str, list[Unit]]:
    index: dict[str, list[Unit]] = {}
    for u in units:
        for key in {u.code.lower(), _fold(u.name), *(a.lower() for a in u.addresses)}:
            index.setdefault(key, []).append(u)
    return index


def plan(sheet: Sheet, org: Organisation, settings: Settings, *, default_unit: str | None = None) -> list[Planned]:
    """Check every row and derive its address; ``ImportRefused`` with every problem found."""
    errors: list[tuple[int, str]] = []
    index = _unit_index(org.list_units())
    fallback = None
    if default_unit:
        fallback = (index.get(default_unit.strip().lower()) or index.get(_fold(default_unit)) or [None])[0]
        if fallback is None:
            raise ImportRefused([(0, f"--unit {default_unit}: no such unit (see `mailserver unit list`)")])
    domain = settings.domains[0]
    taken = org.taken_local_parts(domain)
    registered = org.person_keys()
    seen: dict[str, int] = {}
    planned = []
    for row in sheet.rows:
        problems = []
        if not row.name:
            problems.append("empty name (Họ và tên)")
        else:
            try:
                split_name(row.name)
            except AddressPolicyError:
                problems.append(f"name {row.name!r} has no letters")
        unit = fallback
        if row.unit:
            found = index.get(row.unit.lower()) or index.get(_fold(row.unit)) or []
            if len({u.id for u in found}) > 1:
                problems.append(f"unit {row.unit!r} is ambiguous: give its code ({', '.join(u.code for u in found)})")
            elif not found:
                problems.append(f"unknown unit {row.unit!r} (create it with `mailserver unit add`)")
            else:
                unit = found[0]
        elif unit is None:
            problems.append("no unit (Phòng ban/Đơn vị) and no --unit")
        phone = normalise_phone(row.phone, mobile=False)
        mobile = normalise_phone(row.mobile, mobile=True)
        if phone is None:
            problems.append(f"malformed phone number {row.phone!r}")
        if mobile is None:
            problems.append(f"malformed mobile number {row.mobile!r} (10 digits, 03/05/07/08/09…)")
        if not problems:
            key = person_key(row.name, unit.id, mobile or phone)
            if key in seen:
                problems.append(f"the same person as line {seen[key]} (name, unit and phone)")
            elif key in registered:
                problems.append(f"{row.name} is already registered in {unit.name}")
            seen.setdefault(key, row.line)
        if problems:
            errors.extend((row.line, p) for p in problems)
            continue
        local = derive_local_part(row.name, taken, settings.address_rule)  # R-ADDR-*
        taken.add(local)
        planned.append(Planned(row, unit, f"{local}@{domain}", phone, mobile))
    if not sheet.rows:
        errors.append((0, "the sheet has no rows"))
    if errors:
        raise ImportRefused(sorted(errors))
    return planned


_RESULT_HEADER = ("TT", "Họ và tên", "Phòng ban/Đơn vị", "Chức vụ", "Địa chỉ thư điện tử", "Mật khẩu ban đầu",
                  "Dòng")


def _sheet_path(out_dir: Path, unit: Unit) -> Path:
    return out_dir / f"{unit.code}.csv"


def execute(planned: list[Planned], org: Organisation, settings: Settings, out_dir: Path, *,
            delimiter: str = ",", progress: Callable[[int], None] | None = None) -> list[Path]:
    """Create the accounts in one transaction and write one result sheet per unit; returns the
    sheets. Refuses (``ImportRefused``) before creating anything if a sheet would overwrite one.
    ``progress(1)`` after each password hashed (the slow part: argon2), from worker threads."""
    from mailserver.accounts.auth import hash_password
    from mailserver.policy.passwords import generate_password

    by_unit: dict[int, list[int]] = {}
    for i, p in enumerate(planned):
        by_unit.setdefault(p.unit.id, []).append(i)
    targets = {uid: _sheet_path(out_dir, planned[idx[0]].unit) for uid, idx in by_unit.items()}
    clash = [str(t) for t in targets.values() if t.exists()]
    if clash:
        raise ImportRefused([(0, f"result sheet {c} exists; move it away or give another --out") for c in clash])
    length = max(12, settings.passwords.min_length)
    passwords = [generate_password(length) for _ in planned]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # argon2 releases the GIL
        def hashed(pw: str) -> str:
            result = hash_password(settings.passwords, pw)
            if progress is not None:
                progress(1)
            return result

        hashes = list(pool.map(hashed, passwords))
    out_dir.mkdir(parents=True, exist_ok=True)
    pending = Path(tempfile.mkdtemp(prefix=".import-", dir=out_dir))
    try:
        for uid, indexes in by_unit.items():
            path = pending / targets[uid].name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # initial passwords inside
            with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as f:
                w = csv.writer(f, delimiter=delimiter, lineterminator="\r\n")
                w.writerow(_RESULT_HEADER)
                for i in indexes:
                    p = planned[i]
                    w.writerow((p.row.tt, p.row.name, p.unit.name, p.row.title, p.address, passwords[i], p.row.line))
                f.flush()
                os.fsync(f.fileno())
        org.create_people([
            NewPerson(p.address, p.row.name, h, p.unit.id, p.row.title, p.phone, p.mobile)
            for p, h in zip(planned, hashes)
        ])
        for uid in by_unit:
            os.replace(pending / targets[uid].name, targets[uid])
    finally:
        shutil.rmtree(pending, ignore_errors=True)
    return [targets[uid] for uid in by_unit]
