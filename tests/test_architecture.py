"""The package import rules of docs/architecture.md, section 1, hold (checked by import-linter,
.importlinter)."""

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What front ends may import of storage; every other storage module is forbidden to them.
FRONTEND_ALLOWED = ("storage.api", "storage.errors", "storage.search", "storage.mime")
#: Packages named in .importlinter that may not exist yet (the POP3 front end moving out of imap/).
OPTIONAL_PACKAGES = ("pop3",)


def _config_for_this_tree(tmp_path: Path) -> Path:
    """.importlinter with the optional packages that do not exist here left out (import-linter
    refuses a contract naming a missing package)."""
    missing = {name for name in OPTIONAL_PACKAGES if not (ROOT / name / "__init__.py").exists()}
    lines = [
        line for line in (ROOT / ".importlinter").read_text().splitlines()
        if line.strip() not in missing or not line.startswith((" ", "\t"))
    ]  # fmt: skip
    path = tmp_path / "importlinter.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_import_rules_of_the_design_hold(tmp_path):
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    config = _config_for_this_tree(tmp_path)
    result = subprocess.run([exe, "--config", str(config)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _storage_modules() -> set[str]:
    """Top-level modules and packages under storage/ (what a forbidden entry covers; the Alembic
    scripts directory is no package)."""
    found = set()
    for path in (ROOT / "storage").iterdir():
        if path.name.startswith(("_", ".")):
            continue
        if path.suffix == ".py" or (path / "__init__.py").exists():
            found.add(f"storage.{path.stem}")
    return found


def test_front_ends_storage_rule_is_an_allowlist():
    """Every storage module is either allowed to the front ends or forbidden to them: a new
    storage module cannot become a side door by being left off the forbidden list."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter")
    forbidden = set(parser["importlinter:contract:frontends-no-sql"]["forbidden_modules"].split())
    modules = _storage_modules()
    assert modules - set(FRONTEND_ALLOWED) == {m for m in forbidden if m.startswith("storage.")}
    assert set(FRONTEND_ALLOWED) <= modules
