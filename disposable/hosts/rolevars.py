"""The roles' variables as the controller sees them: role defaults, the per-OS vars of the
one OS every host runs (Debian 12) and group_vars/all, with the simple '{{ other_var }}'
references resolved. The host spec (tests/spec), the fingerprint and the bake read them
here, so no version, path or port is written twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import yaml

from disposable.hashing import hash_files
from disposable.paths import INVENTORY_DIR, REPO_ROOT

ROLES_DIR = REPO_ROOT / "roles"
BUILD_DIR = REPO_ROOT / ".build"
HOST_OS_VARS = "Debian-12.yml"


def _raw() -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pattern in ("*/defaults/main.yml", f"*/vars/{HOST_OS_VARS}"):
        for path in sorted(ROLES_DIR.glob(pattern)):
            values.update(yaml.safe_load(path.read_text()) or {})
    values.update(yaml.safe_load((INVENTORY_DIR / "group_vars" / "all.yml").read_text()) or {})
    values["dml_repo_dir"] = str(REPO_ROOT)
    values["dml_build_dir"] = str(BUILD_DIR)
    return values


def _render(values: dict[str, Any]) -> dict[str, Any]:
    """Resolve '{{ other_var }}' references between plain string values (a few passes)."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    resolved = dict(values)
    for _ in range(5):
        for key, value in resolved.items():
            if isinstance(value, str) and "{{" in value:
                try:
                    resolved[key] = env.from_string(value).render(**resolved)
                except jinja2.exceptions.TemplateError:  # lookups, filters or values only Ansible has
                    continue
    return resolved


def role_vars() -> dict[str, Any]:
    return _render(_raw())


def environment_vars(env: str) -> dict[str, Any]:
    """The plain values of inventories/group_vars/env_<env>.yml (empty when it has none)."""
    path = INVENTORY_DIR / "group_vars" / f"env_{env.replace('-', '_')}.yml"
    return dict(yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def environment_value(env: str, name: str) -> Any:
    """A role variable as the environment sets it (its group_vars), else the role's default."""
    return environment_vars(env).get(name, role_vars()[name])


def inputs_hash(roles: list[str], extra_files: list[Path]) -> str:
    """sha256 over the named roles' files and `extra_files` (path and content): what a
    baked image of those roles depends on. First 12 hex digits."""
    files = list(extra_files)
    for role in roles:
        files += [p for p in (ROLES_DIR / role).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return hash_files(files, REPO_ROOT, length=12)
