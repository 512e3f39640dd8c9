"""The checksum manifest of a backup (R-SEC-4): ``MANIFEST.sha256``, one ``<sha256>  <path>``
line per file in ``sha256sum`` format, so that ``sha256sum -c MANIFEST.sha256`` checks a backup
without this program too. ``backup.json`` (what kind of backup, when, of which database) is
listed in it like any file. ``verify`` reads every file again and names the first that fails.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MANIFEST = "MANIFEST.sha256"
INFO = "backup.json"
_CHUNK = 1024 * 1024

#: called with the number of bytes just read (progress bars)
Progress = Callable[[int], None]


class DamagedBackup(Exception):
    """The backup fails verification; ``path`` is the file that fails (relative to the backup)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    files: int
    bytes: int


def sha256_file(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def write_manifest(root: Path, progress: Progress | None = None) -> int:
    """Checksum every file under ``root`` (read back from the backup itself, as written)."""
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(root).as_posix()
        if "\n" in rel or "\\" in rel:
            raise DamagedBackup(rel, "a file name the manifest cannot hold")
        lines.append(f"{sha256_file(path, progress)}  {rel}\n")
    (root / MANIFEST).write_text("".join(lines), encoding="utf-8")
    return len(lines)


def read_manifest(root: Path) -> dict[str, str]:
    """path → sha256; ``DamagedBackup`` naming the manifest when it is missing or malformed."""
    path = root / MANIFEST
    if not path.is_file():
        raise DamagedBackup(MANIFEST, "missing: not a backup made by `mailserver db backup`")
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64 or not rel or rel.startswith("/") or ".." in rel.split("/"):
            raise DamagedBackup(MANIFEST, f"line {number} is not '<sha256>  <path>'")
        entries[rel] = digest
    if INFO not in entries:
        raise DamagedBackup(MANIFEST, f"does not list {INFO}")
    return entries


def manifest_bytes(root: Path) -> int:
    return sum((root / rel).stat().st_size for rel in read_manifest(root) if (root / rel).is_file())


def verify(root: Path, progress: Progress | None = None) -> Verified:
    """Every listed file is there with its checksum, the SQLite database passes ``integrity_check``,
    and nothing unlisted hides in the backup. Raises ``DamagedBackup`` naming the first failure."""
    entries = read_manifest(root)
    total = 0
    for rel, digest in entries.items():
        path = root / rel
        if not path.is_file():
            raise DamagedBackup(rel, "missing")
        if sha256_file(path, progress) != digest:
            raise DamagedBackup(rel, "checksum differs from the manifest (damaged or changed)")
        total += path.stat().st_size
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel != MANIFEST and rel not in entries:
            raise DamagedBackup(rel, "not in the manifest (added after the backup)")
    info = read_info(root)
    if info.get("kind") == "sqlite":
        _check_sqlite(root, info["database"])
    return Verified(len(entries), total)


def read_info(root: Path) -> dict:
    try:
        info = json.loads((root / INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DamagedBackup(INFO, f"unreadable: {exc}") from None
    if not isinstance(info, dict) or info.get("kind") not in ("sqlite", "postgresql") or not info.get("database"):
        raise DamagedBackup(INFO, "does not say which database it holds")
    return info


def _check_sqlite(root: Path, name: str) -> None:
    try:
        conn = sqlite3.connect(f"file:{root / name}?mode=ro&immutable=1", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DamagedBackup(name, f"not a readable SQLite database: {exc}") from None
    if result != "ok":
        raise DamagedBackup(name, f"fails PRAGMA integrity_check: {result}")
