"""Migration 0010_subscriptions: the subscribed flags of existing folders become the list of
subscribed names, on a store made at the schema before it."""

from __future__ import annotations

import sqlite3


def test_upgrade_carries_existing_subscriptions_over(tmp_path):
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from storage.migrate import _config, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = _config(url)
    script = ScriptDirectory.from_config(cfg)
    engine = create_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        for head in script.get_heads():
            if head != "0010_subscriptions":
                command.upgrade(cfg, head)
    engine.dispose()
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute(
            "INSERT INTO accounts (id, address, display_name, kind, state, created_at, used_bytes, used_messages, "
            "last_uidvalidity) VALUES (1, 'a@x.vn', 'A', 'user', 'active', '2026-01-01 00:00:00', 0, 0, 0)"
        )
        for n, (name, subscribed) in enumerate((("INBOX", 1), ("Sent", 1), ("Old", 0), ("Projects/2024", 1)), 1):
            db.execute(
                "INSERT INTO folders (id, account_id, name, subscribed, uidvalidity, uidnext, highestmodseq, recent_floor) "
                "VALUES (?, 1, ?, ?, ?, 1, 1, 1)", (n, name, subscribed, n),
            )
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'subscriptions'").fetchone() is None
    upgrade(url)
    with sqlite3.connect(tmp_path / "old.db") as db:
        rows = db.execute("SELECT account_id, name FROM subscriptions ORDER BY name").fetchall()
    assert rows == [(1, "INBOX"), (1, "Projects/2024"), (1, "Sent")]
