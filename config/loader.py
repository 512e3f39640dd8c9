"""Build the one frozen ``Settings`` object from layered YAML (docs/operations.md, "The configuration file").

Layers, lowest first: built-in defaults (``Settings``' own) → the profile chosen by ``profile:``
(``config/profiles/<name>.yaml``) → the operator's file → ``overrides`` (CLI flags). Mappings merge
key by key; anything else (lists, scalars, null) replaces the lower layer's value.

Every key remembers the file and line it came from, so an error reads
``data/mailserver.yaml:12: listeners.smtp.port: expected an integer 0-65535, got 'abc'``.

Relative paths (``data_dir``, ``tls.cert``, ``tls.key``, a SQLite ``database.url``) are resolved
against the directory of the file that set them (overrides: the working directory), so the
returned settings hold absolute paths. Unset, they default to places inside ``data_dir``, and
``data_dir`` defaults to the config file's own directory.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any, NamedTuple, get_args

import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ValidationError

from config.settings import Settings

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
PROFILES: tuple[str, ...] = get_args(Settings.model_fields["profile"].annotation)
OVERRIDES = "--set"  # the source named in errors about overrides (CLI flags)

Key = tuple[str | int, ...]


class Problem(NamedTuple):
    file: str
    line: int | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """A configuration that cannot be used. ``file``, ``line``, ``key`` and ``message`` describe the
    first problem; ``problems`` holds all of them (one per line in ``str()``)."""

    def __init__(self, file: str | os.PathLike, line: int | None, key: str | None, message: str,
                 others: tuple[Problem, ...] = ()) -> None:
        self.problems = (Problem(str(file), line, key, message), *others)
        self.file, self.line, self.key, self.message = self.problems[0]
        super().__init__("\n".join(str(p) for p in self.problems))


# -- reading YAML with line numbers -------------------------------------------------------------

def _read_yaml(path: Path, display: str) -> tuple[dict, dict[Key, int]]:
    """Parse like ``yaml.safe_load`` but also return the line of every mapping key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(display, None, None, "no such file (`mailserver init` writes one)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(display, None, None, f"cannot read: {exc}") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Key, int] = {}
        data = {} if node is None else _construct(loader, node, (), lines, display)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise ConfigError(display, mark.line + 1 if mark else None, None, f"invalid YAML: {message}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(display, None, None, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(display, node.start_mark.line + 1, None, "expected a mapping of keys at the top level")
    return data, lines


def _construct(loader: yaml.SafeLoader, node: yaml.Node, key: Key, lines: dict[Key, int], display: str) -> Any:
    if not isinstance(node, yaml.MappingNode):
        return loader.construct_object(node, deep=True)
    loader.flatten_mapping(node)  # YAML merge keys (<<)
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        name = loader.construct_object(key_node, deep=True)
        name = name if isinstance(name, str) else str(name)
        line = key_node.start_mark.line + 1
        if name in result:
            raise ConfigError(display, line, _dotted(key + (name,)), "duplicate key")
        lines[key + (name,)] = line
        result[name] = _construct(loader, value_node, key + (name,), lines, display)
    return result


# -- layering -------------------------------------------------------------------------------------

class _Layers:
    """The merged data plus, for every key, the (file, line) of the layer that set it."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.origin: dict[Key, tuple[str, int | None]] = {}

    def add(self, data: dict, lines: dict[Key, int], file: str) -> None:
        self._merge(self.data, data, (), lines, file)

    def _merge(self, base: dict, layer: dict, prefix: Key, lines: dict[Key, int], file: str) -> None:
        for name, value in layer.items():
            key = prefix + (name,)
            if not (isinstance(value, dict) and isinstance(base.get(name), dict)):
                for stale in [k for k in self.origin if k[: len(key)] == key]:
                    del self.origin[stale]
                base[name] = {} if isinstance(value, dict) else value
            self.origin[key] = (file, lines.get(key))
            if isinstance(value, dict):
                self._merge(base[name], value, key, lines, file)

    def where(self, key: Key) -> tuple[str, int | None] | None:
        """Origin of ``key`` or of its nearest ancestor that some layer set."""
        for end in range(len(key), 0, -1):
            if key[:end] in self.origin:
                return self.origin[key[:end]]
        return None


def _expand_overrides(overrides: dict) -> dict:
    """``{"listeners.smtp.port": 0}`` → ``{"listeners": {"smtp": {"port": 0}}}``."""
    result: dict[str, Any] = {}
    for name, value in overrides.items():
        *parents, last = str(name).split(".")
        target = result
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = _expand_overrides(value) if isinstance(value, dict) else value
    return result


def _all_keys(data: dict, prefix: Key = ()) -> dict[Key, None]:
    keys: dict[Key, None] = {}
    for name, value in data.items():
        keys[prefix + (name,)] = None
        if isinstance(value, dict):
            keys.update(_all_keys(value, prefix + (name,)))
    return keys


# -- public entry point ---------------------------------------------------------------------------

def load_settings(path: Path, overrides: dict | None = None) -> Settings:
    """Read ``path`` (and its profile), apply ``overrides``, validate, resolve paths.

    Raises ``ConfigError`` naming file, line, key path and what was expected."""
    path = Path(path)
    display = str(path)
    operator, operator_lines = _read_yaml(path, display)
    extra = _expand_overrides(overrides or {})
    layers = _Layers()

    profile, profile_origin = "none", None
    if "profile" in extra:
        profile, profile_origin = extra["profile"], (OVERRIDES, None)
    elif "profile" in operator:
        profile, profile_origin = operator["profile"], (display, operator_lines[("profile",)])
    if profile not in PROFILES:
        file, line = profile_origin or (display, None)
        raise ConfigError(file, line, "profile", f"expected one of {', '.join(PROFILES)}, got {_show(profile)}")
    profile_file = PROFILE_DIR / f"{profile}.yaml"
    profile_data, profile_lines = _read_yaml(profile_file, str(profile_file))
    if "profile" in profile_data:
        raise ConfigError(profile_file, profile_lines[("profile",)], "profile", "a profile cannot choose a profile")

    layers.add(profile_data, profile_lines, str(profile_file))
    layers.add(operator, operator_lines, display)
    layers.add(extra, {k: None for k in _all_keys(extra)}, OVERRIDES)
    layers.data["profile"] = profile
    _resolve_paths(layers, path.resolve().parent)

    try:
        return Settings.model_validate(layers.data)
    except ValidationError as exc:
        problems = sorted((_problem(err, layers, display) for err in exc.errors()),
                          key=lambda p: (p.file != display, p.line or 0))
        first = problems[0]
        raise ConfigError(first.file, first.line, first.key, first.message, tuple(problems[1:])) from None


# -- path resolution ------------------------------------------------------------------------------

def _resolve_paths(layers: _Layers, config_dir: Path) -> None:
    data = layers.data

    def base_for(key: Key) -> Path:
        origin = layers.origin.get(key)
        return Path.cwd() if origin and origin[0] == OVERRIDES else config_dir

    def absolute(value: str | os.PathLike, key: Key) -> Path:
        candidate = Path(os.path.expanduser(value))
        return candidate if candidate.is_absolute() else Path(os.path.normpath(base_for(key) / candidate))

    data_dir = data.get("data_dir")
    if data_dir is None:
        data_dir = config_dir
    elif isinstance(data_dir, (str, os.PathLike)):
        data_dir = absolute(data_dir, ("data_dir",))
    else:
        return  # not a path: validation reports it
    data["data_dir"] = data_dir

    tls = data.get("tls")
    if tls is None or isinstance(tls, dict):
        tls = data["tls"] = {} if tls is None else tls
        for name in ("cert", "key"):
            value = tls.get(name)
            if value is None:
                tls[name] = data_dir / "tls" / f"{name}.pem"
            elif isinstance(value, (str, os.PathLike)):
                tls[name] = absolute(value, ("tls", name))

    database = data.get("database")
    if database is None or isinstance(database, dict):
        database = data["database"] = {} if database is None else database
        url = database.get("url")
        if url is None:
            database["url"] = f"sqlite:///{data_dir / 'mail.db'}"
        elif isinstance(url, str):
            database["url"] = _absolute_sqlite_url(url, lambda p: absolute(p, ("database", "url")))

    for section, name in (("backup", "dir"), ("ldap", "ca_file"), ("logging", "file")):  # config/backup.py, ldap.py, logs.py
        block = data.get(section)
        if isinstance(block, dict) and isinstance(block.get(name), (str, os.PathLike)):
            block[name] = absolute(block[name], (section, name))


def _absolute_sqlite_url(url: str, absolute: typing.Callable[[str], Path]) -> str:
    """``sqlite:///mail.db`` → ``sqlite:////abs/dir/mail.db``; other URLs unchanged."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+")[0].lower() != "sqlite":
        return url
    file, q, query = rest.partition("?")
    if not file or file == ":memory:" or file.startswith("file:") or file.startswith("/"):
        return url
    return f"{scheme}:///{absolute(file)}{q}{query}"


# -- turning pydantic errors into operator messages --------------------------------------------------

def _problem(err: dict, layers: _Layers, display: str) -> Problem:
    loc: Key = tuple(err["loc"])
    origin = layers.where(loc) or (display, None)
    return Problem(origin[0], origin[1], _dotted(loc) or None, _describe(err, loc))


def _describe(err: dict, loc: Key) -> str:
    kind, got, ctx = err["type"], _show(err.get("input")), err.get("ctx") or {}
    if kind == "extra_forbidden":
        siblings = list(_fields_at(loc[:-1]))
        close = difflib.get_close_matches(str(loc[-1]), siblings, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(siblings)}"
        return f"unknown key ({hint})" if siblings else "unknown key"
    if kind == "missing":
        return "required key missing"
    if kind.startswith("int_") or kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"expected {_int_range(loc)}, got {got}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'one of the listed values')}, got {got}"
    if kind.startswith("bool_"):
        return f"expected true or false, got {got}"
    if kind.startswith("string_"):
        return f"expected a string, got {got}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping (indented key: value lines), got {got}"
    if kind in ("tuple_type", "list_type"):
        return f"expected a list ([a, b] or '- item' lines), got {got}"
    if kind.startswith("float_"):
        return f"expected a number, got {got}"
    if kind.startswith("path_"):
        return f"expected a file or directory path, got {got}"
    if kind == "value_error" and isinstance(ctx.get("error"), ValueError):
        return str(ctx["error"])  # our own validators' text, without pydantic's "Value error, "
    return err["msg"]


def _field_at(loc: Key):
    """The pydantic FieldInfo at ``loc`` (None for dict/list entries or unknown keys)."""
    model: type[BaseModel] | None = Settings
    info = None
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        model = _model_of(info.annotation)
    return info


def _fields_at(loc: Key) -> list[str]:
    if not loc:
        return list(Settings.model_fields)
    info = _field_at(loc)
    model = _model_of(info.annotation) if info else None
    return list(model.model_fields) if model else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for arg in get_args(annotation):
            if (model := _model_of(arg)) is not None:
                return model
    return None


def _int_range(loc: Key) -> str:
    info = _field_at(loc)
    low = high = None
    for item in info.metadata if info else ():
        if isinstance(item, Ge):
            low = item.ge
        elif isinstance(item, Gt):
            low = item.gt + 1
        elif isinstance(item, Le):
            high = item.le
        elif isinstance(item, Lt):
            high = item.lt - 1
    if low is not None and high is not None:
        return f"an integer {low}-{high}"
    if low is not None:
        return f"an integer >= {low}"
    if high is not None:
        return f"an integer <= {high}"
    return "an integer"


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return repr(value)


def _dotted(key: Key) -> str:
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
