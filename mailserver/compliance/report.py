"""The compliance report: the running configuration read against one regulation, article by
article (R-* of docs/requirements.md), for ``mailserver compliance``. Built once as plain values,
then written as text, JSON or one self-contained HTML page (Vietnamese first, English below)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from config.settings import Settings
from mailserver.compliance import checks
from mailserver.compliance.checks import Finding
from mailserver.compliance.matrix import Matrix, load, profile_settings, setting_value
from mailserver.compliance.values import show

KIND_VI = {"enforced": "Máy chủ bảo đảm", "duty": "Trách nhiệm của người quản trị", "not-applicable": "Không áp dụng"}
KIND_EN = {"enforced": "enforced by the server", "duty": "operator's duty", "not-applicable": "not applicable"}


@dataclass(frozen=True)
class Item:
    id: str
    area: str
    articles: str | None
    meaning: str | None
    kind: str
    settings: dict[str, str]
    commands: tuple[str, ...]
    why: str | None
    findings: tuple[Finding, ...]

    @property
    def broken(self) -> bool:
        return any(f.breaks for f in self.findings)


@dataclass(frozen=True)
class Report:
    profile: str
    running_profile: str
    regulation: str | None
    regulation_vi: str | None
    items: tuple[Item, ...]

    def broken(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.broken)

    def as_json(self) -> dict:
        return {"profile": self.profile, "running_profile": self.running_profile, "regulation": self.regulation,
                "items": [{**asdict(i), "broken": i.broken} for i in self.items],
                "summary": self.summary()}

    def summary(self) -> dict[str, int]:
        counts = {k: sum(1 for i in self.items if i.kind == k) for k in KIND_EN}
        return {**counts, "broken": len(self.broken())}


def _findings(running: Settings, own: Settings, keys: tuple[str, ...], rid: str) -> list[Finding]:
    found = [f for k in keys if (f := checks.compare(k, running, own)) is not None]
    if "lifecycle.run_at" in keys and (off := checks.lifecycle_off(running)) is not None:
        found = [f for f in found if f.setting != "lifecycle.run_at"] + [off]
    if "retention.run_at" in keys and (off := checks.retention_off(running)) is not None:
        found = [f for f in found if f.setting != "retention.run_at"] + [off]
    if rid == "R-SEC-1":
        found += checks.filters_off(running)
        if (plain := checks.plaintext_auth(running)) is not None:
            found.append(plain)
    return found


def build(running: Settings, profile: str | None = None, matrix: Matrix | None = None) -> Report:
    """The report of ``running`` against ``profile``'s regulation (default: the running profile)."""
    matrix = matrix or load()
    profile = profile or running.profile
    own = profile_settings(profile)
    items = []
    for req in matrix.requirements:
        entry = req.entry(profile)
        source = req.sources.get(profile)
        values = {k: show(k, setting_value(running, k)) for k in entry.settings}
        found = _findings(running, own, entry.settings, req.id) if entry.kind == "enforced" else []
        items.append(Item(req.id, req.area, source.articles if source else None, source.meaning if source else None,
                          entry.kind, values, entry.commands, entry.why, tuple(found)))
    reg = matrix.regulations.get(profile)
    return Report(profile, running.profile, reg.short if reg else None, reg.short_vi if reg else None, tuple(items))


def text(report: Report) -> str:
    """Plain text for a terminal: one block per requirement; breaches marked ``!!``."""
    head = report.regulation or "no regulation (profile none)"
    out = [f"Compliance of the running configuration with {head} (profile {report.profile})"]
    if report.profile != report.running_profile:
        out.append(f"  (the configuration runs profile {report.running_profile})")
    for item in report.items:
        if item.kind == "not-applicable":
            continue
        mark = "!!" if item.broken else "  "
        where = f" — {item.articles}" if item.articles else ""
        out.append(f"{mark} {item.id}{where}: {KIND_EN[item.kind]}")
        if item.meaning:
            out.append(f"     {item.meaning}")
        for key, value in item.settings.items():
            out.append(f"     {key}: {value}")
        for command in item.commands:
            out.append(f"     $ mailserver {command}")
        if item.kind == "duty" and item.why:
            out.append(f"     ({item.why})")
        for f in item.findings:
            out.append(f"     {'BREAKS' if f.breaks else 'changed'}: {f.en}")
    s = report.summary()
    out.append(f"{s['enforced']} enforced, {s['duty']} operator's duties, {s['not-applicable']} not applicable; "
               f"{s['broken']} requirement(s) not met by this configuration")
    return "\n".join(out) + "\n"
