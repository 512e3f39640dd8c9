"""The accounts CSV of ``migrate imap``: ``address,source_user,source_password``.

A header line naming those columns is optional; blank lines and lines starting with "#" are
skipped. An empty password means "log in with the master/admin login given on the command line"
(Dovecot master users, Zimbra/Cyrus admins: SASL PLAIN with the user as authorization identity).
Every error names the file and line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("address", "source_user", "source_password")


class AccountsFileError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SourceAccount:
    line: int
    address: str  # ours
    source_user: str
    source_password: str | None  # None: use the master login


def read_accounts(path: Path, *, have_master: bool) -> list[SourceAccount]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AccountsFileError(f"{path}: cannot read: {exc}") from None
    out: list[SourceAccount] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in row]
        if number == 1 and cells[0].lower() == "address":
            continue
        where = f"{path}:{number}"
        if len(cells) not in (2, 3):
            raise AccountsFileError(f"{where}: expected {','.join(COLUMNS)} ({len(cells)} columns found)")
        address, user = cells[0].lower(), cells[1]
        password = cells[2] if len(cells) == 3 and cells[2] else None
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise AccountsFileError(f"{where}: address: {cells[0]!r} is not an address")
        if not user:
            raise AccountsFileError(f"{where}: source_user is empty")
        if password is None and not have_master:
            raise AccountsFileError(f"{where}: source_password is empty and no --master-user was given")
        if address in seen:
            raise AccountsFileError(f"{where}: {address} is already on line {seen[address]}")
        seen[address] = number
        out.append(SourceAccount(number, address, user, password))
    if not out:
        raise AccountsFileError(f"{path}: no accounts")
    return out
