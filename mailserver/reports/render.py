"""Reports as CSV, JSON, text, or one self-contained HTML file with SVG charts (pygal): no
script, no outside resource, Vietnamese with English below, readable offline or on the portal.

The charts are SVG images inlined as ``data:`` URIs (an image cannot run script and needs no
file beside the report); the HTML file carries the portal's stylesheet inline, the portal's
/reports page links it instead (its Content-Security-Policy allows no inline style).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import re
from dataclasses import asdict
from importlib import resources

import jinja2
import pygal
from pygal.style import Style

from config.agency import Agency
from mailserver.reports.checks import MailboxChecks
from mailserver.reports.stats import Stats

COLUMNS = ("accounts", "login_imap", "login_pop3", "login_submission", "login_web", "logins", "checks", "received",
           "sent", "bytes_stored", "growth")
_STYLE = Style(background="#ffffff", plot_background="#ffffff", foreground="#1a1a1a", foreground_strong="#1a1a1a",
               foreground_subtle="#555555", colors=("#0b4f8a", "#8b0000", "#0a6b0a", "#b35900"),
               font_family="system-ui, Arial, sans-serif", label_font_size=12, major_label_font_size=12,
               legend_font_size=13, title_font_size=15)


def stats_csv(stats: Stats) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(("section", "name", *COLUMNS))
    for section, rows in (("unit", stats.units), ("month", stats.months)):
        for r in rows:
            row = {**asdict(r), "logins": r.logins}
            w.writerow((section, row.get("unit") or row.get("month"), *(row.get(c, "") for c in COLUMNS)))
    total = {**asdict(stats.total), "logins": stats.total.logins}
    w.writerow(("total", stats.unit or "", *(total.get(c, "") for c in COLUMNS)))
    return out.getvalue()


def stats_json(stats: Stats) -> str:
    return json.dumps(stats.as_dict(), ensure_ascii=False, indent=2) + "\n"


def checks_text(report: list[MailboxChecks]) -> str:
    lines = []
    for r in report:
        short = ", ".join(d.isoformat() for d in r.short_days) or "-"
        per_day = " ".join(f"{d.day:%d/%m}:{d.count}{'' if d.met is not False else '!'}" for d in r.days)
        lines.append(f"{r.mailbox.address}\t{r.mailbox.kind}\t{r.rule[1]}\ttotal={r.total}\tshort={short}\t{per_day}")
    return "\n".join(lines) + ("\n" if lines else "")


def checks_json(report: list[MailboxChecks]) -> str:
    return json.dumps([{"address": r.mailbox.address, "name": r.mailbox.name, "kind": r.mailbox.kind,
                        "unit": r.mailbox.unit, "rule": {"vi": r.rule[0], "en": r.rule[1]}, "total": r.total,
                        "short_days": [d.isoformat() for d in r.short_days],
                        "days": [{"day": d.day.isoformat(), "checks": d.count, "met": d.met} for d in r.days]}
                       for r in report], ensure_ascii=False, indent=2) + "\n"


#: pygal always writes its configuration as an inline <script> (for its own interactive
#: JavaScript, which js=[] leaves out); an image runs no script, and the report carries none
_SCRIPT = re.compile(rb"<script\b.*?</script>", re.S)


def _svg_uri(chart) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(_SCRIPT.sub(b"", chart.render())).decode("ascii")


def _chart(kind, title: str, labels: list[str], series: list[tuple[str, list[int]]]) -> str:
    chart = kind(js=[], style=_STYLE, width=800, height=360, title=title, legend_at_bottom=True,
                 x_label_rotation=0 if len(labels) <= 4 else 30, print_values=False, show_y_guides=True,
                 disable_xml_declaration=False, explicit_size=False, truncate_label=-1)
    chart.x_labels = labels
    for name, values in series:
        chart.add(name, values)
    return _svg_uri(chart)


def charts(stats: Stats) -> list[tuple[str, str, str]]:
    """(Vietnamese caption, English caption, data URI) of each chart."""
    months = [m.month for m in stats.months]
    units = [u.unit for u in stats.units]
    return [
        ("Thư đến và thư đi theo tháng", "Mail received and sent by month",
         _chart(pygal.Bar, "Thư đến / đi — Received / sent", months,
                [("Thư đến / Received", [m.received for m in stats.months]),
                 ("Thư đi / Sent", [m.sent for m in stats.months])])),
        ("Lượt đăng nhập theo giao thức", "Logins by protocol",
         _chart(pygal.StackedBar, "Đăng nhập — Logins", months,
                [("IMAP", [m.login_imap for m in stats.months]), ("POP3", [m.login_pop3 for m in stats.months]),
                 ("SMTP", [m.login_submission for m in stats.months]), ("Web", [m.login_web for m in stats.months])])),
        ("Dung lượng lưu trữ theo đơn vị (MiB)", "Storage used by unit (MiB)",
         _chart(pygal.HorizontalBar, "Dung lượng — Storage (MiB)", units,
                [("MiB", [round(u.bytes_stored / 2**20, 2) for u in stats.units])])),
    ]


_ENV = jinja2.Environment(loader=jinja2.PackageLoader("mailserver.reports", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def stats_html(stats: Stats, agency: Agency, *, standalone: bool = True) -> str:
    """One HTML document; ``standalone``: the stylesheet inline (a file to mail or archive)."""
    css = resources.files("mailserver.web").joinpath("static/site.css").read_text("utf-8") if standalone else None
    return _ENV.get_template("stats.html").render(
        stats=stats, agency=agency, css=css, charts=charts(stats), mib=lambda n: f"{n / 2**20:,.2f}",
        made=dt.datetime.now().strftime("%d/%m/%Y %H:%M"))
