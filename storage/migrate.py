"""Schema migrations through Alembic, run programmatically (no alembic.ini to ship or find).

``serve`` refuses to start on a database that is not at the head revision (DESIGN.md "Storage").
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from storage.engine import normalise_url

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Create or migrate the schema to the newest revision."""
    cfg = _config(url)
    engine = create_engine(normalise_url(url))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()


def pending(url: str) -> tuple[str | None, str]:
    """(current revision, head revision) of the database at ``url``."""
    head = ScriptDirectory.from_config(_config(url)).get_current_head()
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    return current, head


def autogenerate(url: str, message: str) -> None:
    """Developer helper: write a new revision from the models' differences."""
    cfg = _config(url)
    command.revision(cfg, message=message, autogenerate=True)
