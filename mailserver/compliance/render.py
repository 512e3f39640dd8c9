"""docs/requirements.md, rendered from requirements.yaml: ``python -m mailserver.compliance.render``
writes it; tests/test_requirements_matrix.py fails when the file in the tree differs."""

from __future__ import annotations

import sys
from pathlib import Path

from mailserver.compliance.matrix import REGULATED, Matrix, load, profile_settings, setting_value
from mailserver.compliance.values import show

DOC = Path(__file__).resolve().parents[2] / "docs" / "requirements.md"

INTRO = """# Requirements

<!-- Generated from mailserver/compliance/requirements.yaml by
     `python -m mailserver.compliance.render`: edit the YAML file, not this page. -->

This server is built for the official e-mail systems of Vietnamese public agencies
("hệ thống thư điện tử công vụ"). Five agency regulations describe what such a system must do.
This page restates every rule the project takes from them, in our own words, with the document
and article it comes from, and then says how the server meets each one today.

Each requirement has an ID such as `R-QUOTA-1`. Code, tests, configuration profiles and the
README cite these IDs; they never change. Where two regulations disagree (a 2 GB mailbox in one
province, 1 GB in a district), the difference is a setting, and each regulation has a shipped
configuration profile that reproduces its rules (see [operations.md](operations.md#profiles)).

Article references are written `art. 7.3` for article (Điều) 7, clause (khoản) 3, and
`art. 7.2d` when a lettered point (điểm) follows.

`mailserver compliance [--format text|html|json]` prints the same matrix for the running
configuration, flagging what is switched off or overridden.
"""

PART1 = """## Part 1 — What each regulation asks

One table per regulation. A requirement drawn from several regulations appears in each of their
tables, with that regulation's own wording and figures.
"""

PART2 = """## Part 2 — How the server meets each requirement

Status words: **implemented** (the server does it), **partly** (what is missing is said),
**operator's duty** (a procedure of the agency or the IT centre; the server can only help), and
**not yet implemented**. Commands are `mailserver` subcommands; keys are configuration keys
(see [operations.md](operations.md)).
"""

AREA_NOTES = {
    "Lifecycle": """All automatic lifecycle rules are applied by `lifecycle run`, which the server also runs daily
at `lifecycle.run_at` when that is set. It is **off by default**: the operator turns it on (or
schedules `lifecycle run`) once users know how to change their initial password.
""",
}

PART3 = """## Part 3 — The matrix, profile by profile

For each shipped profile: **enforced** (the server applies it; the settings that carry it, with the
profile's values), **duty** (the operator's or the users' duty; the commands that help), or
**n/a** (not applicable, and why). Every requirement enforced under some profile is proven by at
least one test marked `@pytest.mark.requirement("R-…")`; the suite fails otherwise.
"""


def _cell(matrix: Matrix, rid: str, profile: str) -> str:
    entry = matrix.get(rid).entry(profile)
    if entry.kind == "not-applicable":
        return f"n/a: {entry.why}"
    parts = [entry.kind]
    if entry.settings:
        settings = profile_settings(profile)
        parts.append("; ".join(f"`{k}: {show(k, setting_value(settings, k))}`" for k in entry.settings))
    if entry.commands:
        parts.append("; ".join(f"`{c}`" for c in entry.commands))
    if entry.kind == "duty" and entry.why:
        parts.append(entry.why)
    return " — ".join(parts)


def render(matrix: Matrix) -> str:
    out = [INTRO, "## The five regulations", "",
           "| profile | document | issued by | date | mail domain, address form |",
           "|---|---|---|---|---|"]
    for p, reg in matrix.regulations.items():
        out.append(f"| `{p}` | {reg.document} | {reg.issuer} | {reg.date} | {reg.domain} |")
    out += ["", "The `none` profile follows no regulation and keeps the built-in defaults.", "", "---", "", PART1]
    for p, reg in matrix.regulations.items():
        out += [f"### {reg.short.removesuffix(')')}, profile `{p}`)", "",
                "| ID | article | what it asks, in our words |", "|---|---|---|"]
        for req in matrix.requirements:
            if p in req.sources:
                s = req.sources[p]
                out.append(f"| {req.id} | {s.articles} | {s.meaning} |")
        out.append("")
        if reg.note:
            out += [reg.note, ""]
    out += ["---", "", PART2]
    area = None
    for req in matrix.requirements:
        if req.area != area:
            area = req.area
            if out[-1] != "":
                out.append("")
            out += [f"### {area}", ""]
            if area in AREA_NOTES:
                out.append(AREA_NOTES[area])
            out += ["| ID | status | how |", "|---|---|---|"]
        out.append(f"| {req.id} | {req.status} | {req.how} |")
    out += ["", "---", "", PART3]
    for p in REGULATED:
        out += [f"### Profile `{p}`", "", "| ID | under this profile |", "|---|---|"]
        for req in matrix.requirements:
            out.append(f"| {req.id} | {_cell(matrix, req.id, p)} |")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def main() -> None:
    text = render(load())
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if DOC.read_text(encoding="utf-8") == text else 1)
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
