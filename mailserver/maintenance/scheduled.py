"""The daily backup of ``backup.schedule`` (R-SEC-4): written to a ``.partial-`` directory, verified,
renamed to its date-time, then older backups beyond the rotation (rotation.py) removed. A failed
backup is logged, its partial directory removed, and the old backups kept."""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import shutil

from config.settings import Settings
from mailserver.maintenance.backup import BackupReport, backup
from mailserver.maintenance.daily import DailyJob
from mailserver.maintenance.rotation import backup_name, to_delete

log = logging.getLogger(__name__)


def run_scheduled_backup(settings: Settings, now: _dt.datetime | None = None) -> tuple[str, BackupReport, list[str]]:
    """One scheduled backup and its rotation: (name, report, names removed)."""
    assert settings.backup.dir is not None
    root = settings.backup.dir
    root.mkdir(parents=True, exist_ok=True)
    name = backup_name(now or _dt.datetime.now().astimezone())
    partial = root / f".partial-{name}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        report = backup(settings, partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    removed = to_delete([p.name for p in root.iterdir() if p.is_dir()], settings.backup.keep_daily,
                        settings.backup.keep_weekly)
    for old in removed:
        shutil.rmtree(root / old, ignore_errors=True)
    return name, report, removed


def start_backups(loop: asyncio.AbstractEventLoop, settings: Settings) -> DailyJob:
    def work() -> None:
        name, report, removed = run_scheduled_backup(settings)
        log.info("backup %s written and verified: database %d bytes, %d files; removed %s",
                 name, report.database_bytes, report.files, ", ".join(removed) or "none")

    return DailyJob(loop, "backup", settings.backup.schedule, work).start()
