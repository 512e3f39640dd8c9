"""``mailserver db backup DIR``: a consistent copy of a running server's SQLite data directory.

Why it is safe while the server runs: the database is copied by SQLite's online backup API in one
step, which reads one snapshot (writers go on; WAL mode); body files (``blobs/``) are written and
fsynced before the row that points to them commits and are never changed or deleted afterwards,
so every file the snapshot refers to already exists when the files are copied after it. Files
the snapshot does not refer to (bodies delivered after it) are harmless. Everything else in the
data directory (configuration, TLS and DKIM keys) is copied too, so the backup is a complete data
directory: restoring is stopping the server and putting it in place of the old one.

PostgreSQL keeps bodies in the database: back it up with ``pg_dump`` (refused here, saying so).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from config.settings import Settings

#: database files the backup API copies; never copied as files (a live WAL is not a backup)
_LIVE_DB_SUFFIXES = ("", "-wal", "-shm", "-journal")
_SPOOL = "spool"  # SMTP DATA being received: not mail yet


class BackupError(Exception):
    """Why the backup was not made (one line for the operator)."""


@dataclass(frozen=True)
class BackupReport:
    database_bytes: int
    files: int
    file_bytes: int
    seconds: float


def sqlite_path(settings: Settings) -> Path:
    url = settings.database.url
    if not url.startswith("sqlite:///"):
        raise BackupError("the database is not SQLite: back PostgreSQL up with pg_dump (bodies are in the database)")
    return Path(url[len("sqlite:///"):])


def backup(settings: Settings, target: Path) -> BackupReport:
    started = time.monotonic()
    db_path = sqlite_path(settings)
    if not db_path.exists():
        raise BackupError(f"{db_path}: no database")
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target}: exists and is not empty")
    data_dir = settings.data_dir.resolve()
    target = target.resolve()
    if target == data_dir or data_dir in target.parents:
        raise BackupError(f"{target}: inside the data directory")
    target.mkdir(parents=True, exist_ok=True)
    try:
        inside = db_path.resolve().parent == data_dir
        copy = target / (db_path.name if inside else "mail.db")
        src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)  # one step: one snapshot
            if dst.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise BackupError(f"{copy}: the copy fails PRAGMA quick_check")
        finally:
            dst.close()
            src.close()
        skip = {db_path.resolve().with_name(db_path.name + s) for s in _LIVE_DB_SUFFIXES}
        files = size = 0
        for path in sorted(data_dir.rglob("*")):
            rel = path.relative_to(data_dir)
            if path.resolve() in skip or rel.parts[0] == _SPOOL or path.name.startswith(".incoming-"):
                continue
            if path.is_dir():
                (target / rel).mkdir(parents=True, exist_ok=True)
            elif path.is_file():
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / rel)
                files += 1
                size += path.stat().st_size
        os.sync()  # the backup is on disk when the command says so
    except OSError as e:
        raise BackupError(f"{e.filename or target}: {e.strerror or e}") from None
    return BackupReport(copy.stat().st_size, files, size, time.monotonic() - started)
