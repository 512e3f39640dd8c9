"""``compliance``: the running configuration read against a regulation, article by article —
what the server enforces and with which values, what is switched off or loosened and why that
breaks the rule, and the operator's duties with their commands (R-* of docs/requirements.md)."""

from __future__ import annotations

import json

import click

from config.loader import PROFILES
from mailserver.cli.base import Context, pass_ctx


@click.command()
@click.option("--profile", type=click.Choice(PROFILES), default=None,
              help="Judge against this profile's regulation (default: the profile the configuration runs).")
@click.option("--format", "format_", type=click.Choice(["text", "html", "json"]), default="text", show_default=True,
              help="text for a terminal, html for an inspector (one printable page), json for scripts.")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-",
              help="Write the report to this file instead of standard output.")
@pass_ctx
def compliance(obj: Context, profile: str | None, format_: str, output) -> None:
    """Report, article by article, how the configuration meets the regulation of its profile.

    Lines marked "!!" (text) or in red (html) are requirements this configuration does not meet,
    e.g. the daily lifecycle run switched off, or quota.mailbox raised over the profile's limit.

    \b
    Example:
      mailserver compliance
      mailserver compliance --profile most --format html -o bao-cao-tuan-thu.html
    """
    from mailserver.compliance import html, report

    built = report.build(obj.settings, profile)
    if format_ == "json":
        output.write(json.dumps(built.as_json(), ensure_ascii=False, indent=2) + "\n")
    elif format_ == "html":
        output.write(html.render(built))
    else:
        output.write(report.text(built))
