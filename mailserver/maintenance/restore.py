"""``mailserver db restore DIR``: a verified backup put back into an empty data directory (R-SEC-4).

The backup is verified first (every checksum of its manifest, the SQLite database's integrity)
and refused, naming the file that fails, before anything is written. Files go to a temporary
directory beside the data directory and are renamed into place at the end, so a restore cut
short leaves no half data directory. SQLite: the database file comes back with the rest (UIDs,
UIDVALIDITY, MODSEQ and flags are rows in it, so clients do not download again). PostgreSQL:
``pg_restore`` into the configured database, which must hold no tables.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from config.settings import Settings
from mailserver.maintenance.backup import BackupError, Phases, _no_phase, _sync_tree, is_postgresql, libpq_url, pg_tool, sqlite_path
from mailserver.maintenance.manifest import INFO, MANIFEST, DamagedBackup, manifest_bytes, read_info, verify


@dataclass(frozen=True)
class RestoreReport:
    kind: str
    files: int
    bytes: int


def restore(settings: Settings, source: Path, data_dir: Path, phases: Phases = _no_phase,
            config: Path | None = None) -> RestoreReport:
    """``config``: the configuration file in use, which may be the one file already in the data
    directory; it is kept, and the backup's copy, if different, lands beside it as ``.from-backup``."""
    source = source.resolve()
    data_dir = data_dir.resolve()
    if not source.is_dir():
        raise BackupError(f"{source}: no such backup directory")
    kept = config.resolve() if config is not None else None
    if data_dir.exists() and any(p.resolve() != kept for p in data_dir.iterdir()):
        raise BackupError(f"{data_dir}: not empty (restore only into an empty data directory)")
    try:
        verified = verify(source, phases("verify", manifest_bytes(source)))
        info = read_info(source)
    except DamagedBackup as exc:
        raise BackupError(f"damaged backup, nothing restored: {source / exc.path}: {exc.reason}") from None
    except OSError as exc:
        raise BackupError(f"{exc.filename or source}: {exc.strerror or exc}") from None
    if info["kind"] == "postgresql" and not is_postgresql(settings):
        raise BackupError("a PostgreSQL backup: database.url of this configuration is not PostgreSQL")
    if info["kind"] == "sqlite" and is_postgresql(settings):
        raise BackupError("an SQLite backup: database.url of this configuration is PostgreSQL")
    outside_db = None
    if info["kind"] == "sqlite":
        db_path = sqlite_path(settings).resolve()
        if db_path.parent != data_dir:  # the database lives elsewhere: put it there
            if db_path.exists():
                raise BackupError(f"{db_path}: a database is already there")
            outside_db = db_path
    else:
        _check_empty_postgresql(settings)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data_dir.parent))
    try:
        advance = phases("files", verified.bytes)
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source)
            if rel.as_posix() in (MANIFEST, INFO) or (info["kind"] == "postgresql" and rel.as_posix() == info["database"]):
                continue
            if path.is_dir():
                (staging / rel).mkdir(parents=True, exist_ok=True)
            elif path.is_file():
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, staging / rel)
                advance(path.stat().st_size)
        if outside_db is not None:
            outside_db.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / info["database"], outside_db)
        _sync_tree(staging)
        if info["kind"] == "postgresql":
            _pg_restore(settings, source / info["database"])
        data_dir.mkdir(parents=True, exist_ok=True)
        for entry in staging.iterdir():
            dest = data_dir / entry.name
            if dest.exists():  # only the kept configuration file can be there (checked above)
                if dest.read_bytes() != entry.read_bytes():
                    os.replace(entry, dest.with_name(dest.name + ".from-backup"))
                continue
            os.replace(entry, dest)
    except OSError as exc:
        raise BackupError(f"{exc.filename or data_dir}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RestoreReport(info["kind"], verified.files, verified.bytes)


def _check_empty_postgresql(settings: Settings) -> None:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(settings.database.url)
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
    finally:
        engine.dispose()
    if tables:
        raise BackupError(f"the PostgreSQL database already holds {len(tables)} tables: restore into an empty database")


def _pg_restore(settings: Settings, dump: Path) -> None:
    done = subprocess.run([pg_tool("pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction",
                           "--dbname", libpq_url(settings.database.url), str(dump)], capture_output=True, text=True)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else str(done.returncode)
        raise BackupError(f"pg_restore failed: {last}")
