"""The requirements matrix: requirements.yaml read into frozen values, and per profile what each
requirement is — enforced by the server (the settings that carry it, with their values), the
operator's duty (the commands that help), or not applicable (why).

Pure: no store, no network. ``profile_settings`` gives a profile's own values (built-in defaults
under the shipped profile file), which the report compares with the running configuration.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from config.loader import PROFILE_DIR
from config.settings import Settings

DATA = Path(__file__).resolve().parent / "requirements.yaml"
#: The profiles that follow a regulation, in the order of docs/requirements.md.
REGULATED: tuple[str, ...] = ("molisa", "lamdong", "most", "moj", "hcm-q4")
Kind = Literal["enforced", "duty", "not-applicable"]
KINDS: tuple[str, ...] = ("enforced", "duty", "not-applicable")


@dataclass(frozen=True)
class Source:
    articles: str
    meaning: str


@dataclass(frozen=True)
class Regulation:
    profile: str
    document: str
    issuer: str
    date: str
    domain: str
    short: str
    short_vi: str
    note: str | None = None


@dataclass(frozen=True)
class Entry:
    """One requirement under one profile."""

    kind: Kind
    settings: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    why: str | None = None


@dataclass(frozen=True)
class Requirement:
    id: str
    area: str
    sources: dict[str, Source]
    status: str
    how: str
    default: Entry
    overrides: dict[str, Entry] = field(default_factory=dict)

    def entry(self, profile: str) -> Entry:
        """What this requirement is under ``profile`` (R-* per regulation)."""
        if profile not in self.sources:
            reason = ("no regulation is followed" if profile == "none"
                      else "this regulation has no article on it")
            if self.default.kind == "enforced" and profile != "none":
                reason += " (the server applies its built-in rule anyway)"
            return Entry("not-applicable", why=reason)
        return self.overrides.get(profile, self.default)


@dataclass(frozen=True)
class Matrix:
    regulations: dict[str, Regulation]
    requirements: tuple[Requirement, ...]

    def get(self, rid: str) -> Requirement:
        for req in self.requirements:
            if req.id == rid:
                return req
        raise KeyError(rid)

    def ids(self) -> frozenset[str]:
        return frozenset(r.id for r in self.requirements)

    def enforced_ids(self) -> frozenset[str]:
        """Requirements the server enforces under at least one profile: each needs a test."""
        return frozenset(r.id for r in self.requirements
                         if any(r.entry(p).kind == "enforced" for p in REGULATED))


class MatrixError(ValueError):
    """requirements.yaml is malformed (names the requirement and the key)."""


def _entry(data: dict, where: str) -> Entry:
    kind = data.get("kind")
    if kind not in KINDS:
        raise MatrixError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    unknown = set(data) - {"kind", "settings", "commands", "why"}
    if unknown:
        raise MatrixError(f"{where}: unknown keys {sorted(unknown)}")
    for key in data.get("settings", ()):
        setting_value(Settings(), key)  # a typo in a setting name fails here, not in front of an inspector
    if kind == "not-applicable" and not data.get("why"):
        raise MatrixError(f"{where}: not-applicable needs a why")
    return Entry(kind, tuple(data.get("settings", ())), tuple(data.get("commands", ())), data.get("why"))


_REQUIREMENT_KEYS = frozenset({"id", "area", "sources", "status", "how", "kind", "settings", "commands", "why", "profiles"})


def parse(data: dict) -> Matrix:
    regs = {p: Regulation(profile=p, **fields) for p, fields in data["regulations"].items()}
    reqs = []
    for item in data["requirements"]:
        rid = item["id"]
        unknown = set(item) - _REQUIREMENT_KEYS
        if unknown:
            raise MatrixError(f"{rid}: unknown keys {sorted(unknown)}")
        sources = {p: Source(**s) for p, s in item.get("sources", {}).items()}
        for p in sources:
            if p not in regs:
                raise MatrixError(f"{rid}: source {p!r} is not a regulation")
        default = _entry({k: item[k] for k in ("kind", "settings", "commands", "why") if k in item}, rid)
        overrides = {p: _entry({**{"settings": default.settings, "commands": default.commands}, **o}, f"{rid}.profiles.{p}")
                     for p, o in item.get("profiles", {}).items()}
        reqs.append(Requirement(rid, item["area"], sources, item["status"], item["how"], default, overrides))
    ids = [r.id for r in reqs]
    if len(set(ids)) != len(ids):
        raise MatrixError("a requirement id appears twice")
    return Matrix(regs, tuple(reqs))


@functools.cache
def load(path: Path = DATA) -> Matrix:
    with open(path, encoding="utf-8") as f:
        return parse(yaml.safe_load(f))


def setting_value(settings: Settings, key: str) -> Any:
    """``quota.mailbox`` → ``settings.quota.mailbox`` (KeyError naming the key when absent)."""
    value: Any = settings
    for part in key.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif hasattr(value, part) or part in type(value).model_fields:
            value = getattr(value, part)
        else:
            raise MatrixError(f"setting {key!r} does not exist")
    return value


@functools.cache
def profile_settings(profile: str) -> Settings:
    """The profile's own values: built-in defaults under config/profiles/<profile>.yaml."""
    with open(PROFILE_DIR / f"{profile}.yaml", encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    return Settings.model_validate({**data, "profile": profile})
