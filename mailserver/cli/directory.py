"""``directory export``: the e-mail directory (danh bạ, R-DIR-1) as CSV, JSON, vCard, LDIF or HTML."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mailserver.cli.base import Context, Group, organisation, pass_ctx


@click.group(cls=Group)
def directory() -> None:
    """The e-mail directory (danh bạ, R-DIR-1)."""


@directory.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "vcf", "ldif", "html"]), default="csv",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout).")
@click.option("--title", default="Danh bạ thư điện tử", show_default=True, help="Title of the HTML/JSON directory.")
@pass_ctx
def directory_export(obj: Context, fmt: str, output: Path | None, title: str) -> None:
    """Every receiving unit, group and personal address, in Vietnamese order."""
    from mailserver.accounts import directory as d

    with organisation(obj) as org:
        items = d.entries(org.directory_rows())
    base_dn = ",".join(f"dc={label}" for label in obj.settings.domains[0].split("."))
    text = d.render(items, fmt, title=title, base_dn=base_dn)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    output.write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="")
    click.echo(f"{len(items)} entr{'y' if len(items) == 1 else 'ies'} → {output}", err=True)
