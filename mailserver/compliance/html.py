"""The compliance report as one self-contained HTML page (no scripts, no external files), fit to
print and hand to an inspector: Vietnamese first, English below (R-TEXT-1: UTF-8, NFC)."""

from __future__ import annotations

import unicodedata
from html import escape

from mailserver.compliance.report import KIND_EN, KIND_VI, Report

STYLE = """
*{box-sizing:border-box}body{font:15px/1.5 system-ui,"Segoe UI",Arial,sans-serif;color:#1a1a1a;max-width:60rem;
margin:0 auto;padding:1rem}h1{font-size:1.4rem}h2{font-size:1.1rem;margin:1.5rem 0 .3rem}.en{color:#555;display:block}
table{border-collapse:collapse;width:100%;table-layout:fixed}td,th{border:1px solid #bbb;padding:.35rem;vertical-align:top;
overflow-wrap:anywhere;text-align:left}th{background:#eee}.broken{background:#fde8e8}.breaks{color:#a00000;font-weight:600}
code{font-size:.9em}@media print{body{max-width:none;font-size:11pt}tr{break-inside:avoid}}
"""


def _both(vi: str, en: str) -> str:
    return f'{escape(vi)}<span class="en" lang="en">{escape(en)}</span>'


def render(report: Report) -> str:
    title_vi = "Báo cáo tuân thủ quy chế thư điện tử"
    title_en = "E-mail regulation compliance report"
    reg_vi = report.regulation_vi or "không theo quy chế nào (hồ sơ none)"
    reg_en = report.regulation or "no regulation (profile none)"
    s = report.summary()
    rows = []
    for item in report.items:
        if item.kind == "not-applicable":
            continue
        what = [f"<b>{escape(item.id)}</b>"]
        if item.articles:
            what.append(f"Điều / art. {escape(item.articles.removeprefix('art. '))}")
        how = []
        for key, value in item.settings.items():
            how.append(f"<code>{escape(key)}: {escape(value)}</code>")
        for command in item.commands:
            how.append(f"<code>mailserver {escape(command)}</code>")
        if item.kind == "duty" and item.why:
            how.append(f'<span class="en" lang="en">{escape(item.why)}</span>')
        for f in item.findings:
            css = ' class="breaks"' if f.breaks else ""
            how.append(f"<div{css}>{_both(f.vi, f.en)}</div>")
        css = ' class="broken"' if item.broken else ""
        rows.append(
            f'<tr{css}><td>{"<br>".join(what)}</td>'
            f'<td lang="en">{escape(item.meaning or "")}</td>'
            f"<td>{_both(KIND_VI[item.kind], KIND_EN[item.kind])}</td><td>{'<br>'.join(how)}</td></tr>")
    page = f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title_vi)} / {escape(title_en)}</title><style>{STYLE}</style></head><body>
<h1>{_both(title_vi, title_en)}</h1>
<p>{_both(f"Cấu hình đang chạy, đối chiếu với {reg_vi} (hồ sơ {report.profile}).",
          f"The running configuration against {reg_en} (profile {report.profile}).")}</p>
<p id="summary">{_both(
        f"{s['enforced']} yêu cầu máy chủ bảo đảm, {s['duty']} yêu cầu thuộc trách nhiệm người quản trị, "
        f"{s['not-applicable']} không áp dụng; {s['broken']} yêu cầu chưa được cấu hình này đáp ứng.",
        f"{s['enforced']} requirements enforced by the server, {s['duty']} operator's duties, "
        f"{s['not-applicable']} not applicable; {s['broken']} requirement(s) not met by this configuration.")}</p>
<table><thead><tr><th>{_both("Yêu cầu", "Requirement")}</th><th>{_both("Nội dung", "What it asks")}</th>
<th>{_both("Thực hiện", "Kind")}</th><th>{_both("Tham số, lệnh, cảnh báo", "Settings, commands, findings")}</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
    return unicodedata.normalize("NFC", page)
