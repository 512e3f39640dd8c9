"""``report checks|stats``: who checks their mailbox as the profile asks (R-OPS-1), and quarterly
or yearly statistics (R-OPS-2) as CSV, JSON or one self-contained HTML file with charts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from mailserver.cli.base import Context, Group, Refused, pass_ctx


def _date(_ctx, param, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date such as 2026-12-07, got {value!r}", param=param) from None


@click.group(cls=Group)
def report() -> None:
    """Reports for the IT centre (R-OPS-1, R-OPS-2)."""


@report.command("checks")
@click.option("--unit", "unit_code", required=True, help="Unit code: its mailbox, its people and its sub-units.")
@click.option("--from", "start", required=True, callback=_date, metavar="DATE", help="First day (YYYY-MM-DD).")
@click.option("--to", "end", required=True, callback=_date, metavar="DATE", help="Last day (YYYY-MM-DD).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pass_ctx
def report_checks(obj: Context, unit_code: str, start: dt.date, end: dt.date, fmt: str) -> None:
    """Mailbox checks a day (SELECT/STATUS of INBOX, POP3 sessions) against the profile's rule;
    a day that fell short ends with '!'. Exit status 0 even when some fell short."""
    from mailserver.reports import data, render
    from mailserver.reports.checks import checks_report

    if end < start:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    if (end - start).days > 366:
        raise click.BadParameter("at most 366 days at once", param_hint="--to")
    settings = obj.settings
    with obj.store() as store:
        try:
            boxes, _label = data.mailboxes(store, unit_code)
        except data.UnknownUnit as e:
            raise Refused(str(e)) from None
        facts = data.facts(store, start, end, boxes)
    result = checks_report(boxes, facts, settings.reports.checks, start, end,
                           working_days_only=settings.reports.working_days_only)
    click.echo(render.checks_json(result) if fmt == "json" else render.checks_text(result), nl=False)


@report.command("stats")
@click.option("--quarter", metavar="YYYYQn", help="A quarter, e.g. 2026Q4.")
@click.option("--year", metavar="YYYY", help="A year, e.g. 2026.")
@click.option("--unit", "unit_code", help="Only this unit (and its sub-units).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "html"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE (default: stdout).")
@pass_ctx
def report_stats(obj: Context, quarter: str | None, year: str | None, unit_code: str | None, fmt: str,
                 output: Path | None) -> None:
    """Mailboxes, mail in and out, logins, checks and storage by unit and month (R-OPS-2)."""
    from mailserver.reports import data, period, render, stats

    if bool(quarter) == bool(year):
        raise click.UsageError("give one of --quarter or --year")
    try:
        span = period.quarter(quarter) if quarter else period.year(year)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--quarter" if quarter else "--year") from None
    with obj.store() as store:
        try:
            boxes, label = data.mailboxes(store, unit_code)
        except data.UnknownUnit as e:
            raise Refused(str(e)) from None
        facts = data.facts(store, span.start, span.end, boxes)
    result = stats.compute(span, boxes, facts, label)
    text = {"csv": render.stats_csv, "json": render.stats_json}.get(fmt, lambda s: render.stats_html(s, obj.settings.agency))(result)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"{output}: {span.label}, {result.total.accounts} mailbox(es)", err=True)
