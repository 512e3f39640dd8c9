"""Schema migrations through Alembic, run programmatically (no alembic.ini to ship or find).

``serve`` refuses to start on a database that is not at the head revision (docs/architecture.md, "Storage").
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
            command.upgrade(cfg, "heads")
    finally:
        engine.dispose()


def pending(url: str) -> tuple[str | None, str]:
    """(current revisions, head revisions) of the database at ``url``, comma-joined and sorted.

    Features add their tables on their own Alembic branches, so there may be several heads.
    """
    heads = ",".join(sorted(ScriptDirectory.from_config(_config(url)).get_heads()))
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            current = ",".join(sorted(MigrationContext.configure(conn).get_current_heads())) or None
    finally:
        engine.dispose()
    return current, heads


def autogenerate(url: str, message: str) -> None:
    """Developer helper: write a new revision from the models' differences."""
    cfg = _config(url)
    command.revision(cfg, message=message, autogenerate=True)
