"""``mailbox import|export``: mbox and Maildir in and out of one account (mailserver/migrate/files.py)."""

from __future__ import annotations

import click

from mailserver.cli.base import Group


@click.group(cls=Group)
def mailbox() -> None:
    """Import or export one account's mail as mbox or Maildir."""
