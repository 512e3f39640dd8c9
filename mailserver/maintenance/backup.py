"""``mailserver db backup DIR``: a consistent, verified copy of a running server (R-SEC-4).

Why it is safe while the server runs. SQLite: the database is copied by SQLite's online backup
API in one step, which reads one snapshot (writers go on; WAL mode); body files (``blobs/``) are
written and fsynced before the row that points to them commits and are never changed or deleted
afterwards, so every file the snapshot refers to already exists when the files are copied after
it. Files the snapshot does not refer to (bodies delivered after it) are harmless. PostgreSQL
keeps bodies in the database: ``pg_dump`` (one snapshot, custom format) writes ``database.pgdump``.
Everything else in the data directory (configuration, TLS and DKIM keys) is copied too.

Every backup ends with ``MANIFEST.sha256`` (mailserver/maintenance/manifest.py), written from the
files as they were written, and is then verified (read again, checksums and the database checked)
before the command says it is done. ``mailserver db restore`` (restore.py) puts it back.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from config.settings import Settings
from mailserver.maintenance.manifest import INFO, DamagedBackup, Progress, verify, write_manifest

#: database files the backup API copies; never copied as files (a live WAL is not a backup)
_LIVE_DB_SUFFIXES = ("", "-wal", "-shm", "-journal")
_SPOOL = "spool"  # SMTP DATA being received: not mail yet
PG_DUMP_NAME = "database.pgdump"

#: (phase, total bytes or None) → a progress callback for that phase
Phases = Callable[[str, int | None], Progress]


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
        raise BackupError("the database is not SQLite")
    return Path(url[len("sqlite:///"):])


def is_postgresql(settings: Settings) -> bool:
    return settings.database.url.startswith(("postgresql:", "postgresql+", "postgres:"))


def libpq_url(url: str) -> str:
    """SQLAlchemy's ``postgresql+psycopg://…`` as pg_dump and pg_restore read it."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep else url


def pg_schema(url: str) -> str | None:
    """The schema a URL confines the server to (``?options=-csearch_path=<schema>,…``), whose
    objects alone are dumped; None: the whole database."""
    from urllib.parse import parse_qs, urlsplit

    for option in parse_qs(urlsplit(url).query).get("options", []):
        for word in option.split():
            if word.startswith("-csearch_path="):
                return word.split("=", 1)[1].split(",")[0].strip() or None
    return None


def pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} not found: install the PostgreSQL client (Debian: postgresql-client) "
                          "of the server's major version")
    return path


def _no_phase(_phase: str, _total: int | None) -> Progress:
    return lambda _n: None


def backup(settings: Settings, target: Path, phases: Phases = _no_phase) -> BackupReport:
    started = time.monotonic()
    data_dir = settings.data_dir.resolve()
    target = target.resolve()
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target}: exists and is not empty")
    if target == data_dir or data_dir in target.parents:
        raise BackupError(f"{target}: inside the data directory")
    skip: set[Path] = set()
    if is_postgresql(settings):
        pg_dump = pg_tool("pg_dump")
        kind = "postgresql"
    else:
        db_path = sqlite_path(settings)
        if not db_path.exists():
            raise BackupError(f"{db_path}: no database")
        skip = {db_path.resolve().with_name(db_path.name + s) for s in _LIVE_DB_SUFFIXES}
        kind = "sqlite"
    target.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "postgresql":
            name = PG_DUMP_NAME
            _pg_dump(pg_dump, settings.database.url, target / name)
        else:
            inside = db_path.resolve().parent == data_dir
            name = db_path.name if inside else "mail.db"
            _sqlite_snapshot(db_path, target / name)
        database_bytes = (target / name).stat().st_size
        files, size = _copy_files(data_dir, target, skip | {target / name}, phases)
        info = {"kind": kind, "database": name, "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "hostname": settings.hostname, "domains": list(settings.domains)}
        (target / INFO).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _sync_tree(target)
        total = database_bytes + size
        write_manifest(target, phases("checksums", total))
        _fsync(target / "MANIFEST.sha256")
        verify(target, phases("verify", total))  # the backup is good when the command says so
    except OSError as e:
        raise BackupError(f"{e.filename or target}: {e.strerror or e}") from None
    except DamagedBackup as e:
        raise BackupError(f"the backup failed its own verification: {e}") from None
    return BackupReport(database_bytes, files, size, time.monotonic() - started)


def _sqlite_snapshot(db_path: Path, copy: Path) -> None:
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    dst = sqlite3.connect(copy)
    try:
        src.backup(dst)  # one step: one snapshot
        if dst.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError(f"{copy}: the copy fails PRAGMA quick_check")
    finally:
        dst.close()
        src.close()


def _pg_dump(pg_dump: str, url: str, out: Path) -> None:
    schema = pg_schema(url)
    done = subprocess.run([pg_dump, "--format=custom", "--no-owner", *([f"--schema={schema}"] if schema else []),
                           "--file", str(out), libpq_url(url)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")


def _copy_files(data_dir: Path, target: Path, skip: set[Path], phases: Phases) -> tuple[int, int]:
    paths = []
    for path in sorted(data_dir.rglob("*")):
        rel = path.relative_to(data_dir)
        if path.resolve() in skip or rel.parts[0] == _SPOOL or path.name.startswith(".incoming-"):
            continue
        paths.append((path, rel))
    total = sum(p.stat().st_size for p, _ in paths if p.is_file())
    advance = phases("files", total)
    files = size = 0
    for path, rel in paths:
        if path.is_dir():
            (target / rel).mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / rel)
            files += 1
            size += path.stat().st_size
            advance(path.stat().st_size)
    return files, size


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_tree(root: Path) -> None:
    """Every file and directory of the backup on disk (not the whole machine's page cache)."""
    for path in [*root.rglob("*"), root]:
        _fsync(path)
